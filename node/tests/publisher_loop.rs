//! A developer's own loop, with the real binaries and the real engine: `archy key new`, `archy
//! app new`, edit, `archy app sign`, then `archy-node install --from` the folder the envelope was
//! written to, and the app serves.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::docker::*;
use crate::util::{archy_bin, node_bin};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn node(data: &Path, from: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(node_bin());
    cmd.args(args).arg("--data").arg(data).arg("--from").arg(from);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_new_then_sign_then_install_from_the_folder_serves_the_app() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("loop");
    let _cleanup = Cleanup(vec![id.clone()]);
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("publisher.key");
    run(Command::new(archy_bin()).args(["key", "new", "--key"]).arg(&key));
    run(Command::new(archy_bin()).args(["app", "new", &id, "--dir"]).arg(work.path()).arg("--key").arg(&key));

    // The developer keeps the head `app new` wrote (id, version, their DID) and describes their
    // own container: the local image archive, served on a free port.
    let app_dir = work.path().join(&id);
    let template = std::fs::read_to_string(app_dir.join("archy.toml")).unwrap();
    let head = &template[..template.find("[[volumes]]").expect("the template has volumes")];
    let port = free_port();
    let manifest = format!(
        "{head}[[volumes]]\nname = \"www\"\n{}",
        web_container(
            "web",
            &image.image_id,
            &target(&id),
            Some(port),
            "volumes = [{ volume = \"www\", target = \"/www\" }]\ndata_uid = 65534\n"
        )
    );
    std::fs::write(app_dir.join("archy.toml"), manifest).unwrap();
    run(Command::new(archy_bin()).args(["app", "validate"]).arg(&app_dir));

    // `archy app sign` in the folder the node will read: the default name is the one it reads.
    let from = work.path().join("release");
    std::fs::create_dir_all(from.join(&id)).unwrap();
    std::fs::copy(&image.archive, from.join(target(&id))).unwrap();
    let signed =
        run(Command::new(archy_bin()).current_dir(&from).args(["app", "sign"]).arg(&app_dir).arg("--key").arg(&key));
    let envelope = format!("{id}-0.1.0.archy.json");
    assert!(String::from_utf8_lossy(&signed.stdout).contains(&format!("wrote {envelope}")), "{signed:?}");
    assert!(from.join(&envelope).is_file());

    let data = data_dir("");
    run(&mut node(data.path(), &from, &["install", &id]));
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
    let ps: serde_json::Value =
        serde_json::from_slice(&run(&mut node(data.path(), &from, &["ps", "--json"])).stdout).unwrap();
    assert_eq!(ps[0]["app"], id.as_str(), "{ps}");
    assert_eq!(ps[0]["version"], "0.1.0", "{ps}");
    assert_eq!(ps[0]["state"], "healthy", "{ps}");
    run(&mut node(data.path(), &from, &["uninstall", &id, "--purge", "--yes"]));
    assert!(containers_of(&docker, &id).await.is_empty());

    // An envelope under the former name is still installed, with a warning to rename it.
    std::fs::rename(from.join(&envelope), from.join(format!("{id}-0.1.0.envelope.json"))).unwrap();
    let out = run(node(data.path(), &from, &["install", &id]).env("ARCHY_LOG", "warn"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("signed envelopes are named *.archy.json now; rename this file"), "{stderr}");
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
    run(&mut node(data.path(), &from, &["uninstall", &id, "--purge", "--yes"]));
}
