//! `archy-node service install`: the unit it writes is one systemd accepts (`systemd-analyze
//! verify`), runs this binary on the data folder, waits for the engine's socket, and is
//! hardened; an existing unit is kept unless `--force`.

use std::process::Command;

use crate::util::node_bin;

#[test]
fn service_install_writes_a_unit_systemd_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let install = || {
        Command::new(node_bin())
            .args(["service", "install", "--data", "/var/lib/archy-node", "--unit-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = install();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("systemctl daemon-reload && systemctl enable --now archy-node"), "{stdout}");
    let path = dir.path().join("archy-node.service");
    let unit = std::fs::read_to_string(&path).unwrap();
    assert!(unit.contains(&format!("ExecStart={} run --data /var/lib/archy-node\n", node_bin().display())), "{unit}");
    for line in [
        "After=network-online.target docker.socket docker.service",
        "Wants=network-online.target docker.socket",
        "StateDirectory=archy-node",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "UMask=0077",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}:\n{unit}");
    }

    // systemd itself reads it without a complaint (it checks ExecStart's binary exists, too).
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package) is needed by this test");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // A second install keeps the operator's file.
    std::fs::write(&path, "# edited by the operator\n").unwrap();
    let again = install();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# edited by the operator\n");
}

#[test]
fn the_registry_unit_shipped_in_the_repository_is_one_systemd_accepts() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../registry/systemd/archy-registry.service");
    let unit = std::fs::read_to_string(shipped).unwrap();
    // Verified with a binary that exists here in place of the installed path.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archy-registry.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/archy-registry", "/bin/true")).unwrap();
    let verify = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(unit.contains("DynamicUser=yes") && unit.contains("NoNewPrivileges=yes"), "{unit}");
}
