//! The node's layers (docs/architecture.md): a module imports only from the layers below it, and
//! the middle layer's jobs (sync, Nostr, the orchestrator) never import each other.

use std::path::Path;

const BOTTOM: &[&str] = &["data_dir", "config", "files", "catalog", "node_info", "store", "http"];
const MIDDLE: &[&str] = &["sync", "nostr", "orchestrator"];
const TOP: &[&str] =
    &["sources", "round", "daemon", "engine_watch", "status", "init", "tuf_client", "local_api", "key_standing", "cli"];

fn layer(module: &str) -> usize {
    if BOTTOM.contains(&module) {
        0
    } else if MIDDLE.contains(&module) {
        1
    } else if TOP.contains(&module) {
        2
    } else {
        panic!("module `{module}` is in no layer: add it to tests/layers.rs and docs/architecture.md")
    }
}

/// Every `crate::<module>` a file names.
fn imports(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .map(|(i, _)| text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .filter(|m: &String| !m.is_empty())
        .collect()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).expect("under src");
        let module = rel.components().next().expect("a component").as_os_str().to_string_lossy().replace(".rs", "");
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for import in imports(&text) {
            if import == module {
                continue;
            }
            let (from, to) = (layer(&module), layer(&import));
            if to > from || (from == 1 && to == 1) {
                wrong.push(format!("{}: crate::{import}", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}
