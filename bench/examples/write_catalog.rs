//! Writes an origin folder (`repository/`, `keys/`) with PUBLISHERS × APPS manifest envelopes,
//! each publisher a delegated role, for the benchmark scripts:
//!
//! ```text
//! cargo run --release -p archy-bench --example write_catalog -- DIR [PUBLISHERS] [APPS]
//! ```
//!
//! Defaults: 50 publishers × 200 apps (10,000 targets over 50 delegations). The target names
//! are written to `DIR/target-names.txt`, one per line.

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: write_catalog DIR [PUBLISHERS] [APPS]"));
    let publishers = args.next().map_or(50, |n| n.parse().expect("a number of publishers"));
    let apps = args.next().map_or(200, |n| n.parse().expect("a number of apps"));
    let (metadata, envelopes) = archy_bench::build_origin(&dir, publishers, apps);
    let names: String = (0..publishers)
        .flat_map(|p| (0..apps).map(move |i| archy_bench::envelope_path(&format!("app-{p}-{i}"), "0.1.0") + "\n"))
        .collect();
    std::fs::write(dir.join("target-names.txt"), names).expect("write target-names.txt");
    println!("{publishers} x {apps} envelopes: metadata {metadata} B, envelopes {envelopes} B, in {}", dir.display());
}
