//! Engine names and ownership: every app gets objects of its own even when joining its ids with
//! `-` would have given another app's name; objects an older node made under those old names are
//! adopted by label with their data; a name held by another app's or another node's object is
//! refused, and that object is left as it is.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use catalog::manifest::Mount;
use node::orchestrator::facts::HostFacts;
use node::orchestrator::secrets::SecretStore;
use node::orchestrator::spec::{ApplyContext, container_body};
use node::orchestrator::tar::{Entry, build};
use node::orchestrator::{AppState, Error, Orchestrator, Owner};

use crate::util::docker::*;

/// A node id no node of these tests has.
const OTHER_NODE: &str = "0123456789abcdef0123456789abcdef";

/// An app with one web container `container` mounting its volume `volume` at `/www`.
fn app(id: &str, container: &str, volume: &str, image_id: &str, port: u16) -> String {
    let mut t = head(id, "1.0.0");
    t.push_str(&format!("\n[[volumes]]\nname = \"{volume}\"\n"));
    t.push_str(&web_container(
        container,
        image_id,
        &target(id),
        Some(port),
        &format!("volumes = [{{ volume = \"{volume}\", target = \"/www\" }}]\ndata_uid = 65534\n"),
    ));
    t
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Polls until the app is healthy (the reconciler does not wait for health).
async fn healthy(orch: &Orchestrator, app: &str) {
    for _ in 0..100 {
        if orch.status().await.unwrap().iter().any(|s| s.app == app && s.state == AppState::Healthy) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{app} did not become healthy: {:?}", orch.status().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_whose_hyphen_joined_names_collided_get_their_own_volumes_and_containers() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    // App `x` with volume `a-www` and container `a-web`, and app `x-a` with volume `www` and
    // container `web`: joined with `-`, both are `archy-x-a-www` and `archy-x-a-web`.
    let a = app_id("clash");
    let b = format!("{a}-a");
    assert_eq!(format!("archy-{a}-a-www"), format!("archy-{b}-www"), "the old names collide");
    let _cleanup = Cleanup(vec![a.clone(), b.clone()]);
    let (port_a, port_b) = (free_port(), free_port());
    let source = source_with(vec![
        verified(&app(&a, "a-web", "a-www", &image.image_id, port_a)),
        verified(&app(&b, "web", "www", &image.image_id, port_b)),
    ])
    .await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;

    orch.install(&a, None).await.expect("install a");
    exec(&docker, &format!("archy_{a}_a-web"), "echo private to a > /www/data.txt").await;
    assert_eq!(http_get(port_a, "/data.txt").as_deref(), Some("private to a\n"));

    orch.install(&b, None).await.expect("install b");
    assert_eq!(http_get(port_b, "/data.txt"), None, "b does not see a's data");
    exec(&docker, &format!("archy_{b}_web"), "echo private to b > /www/data.txt").await;
    assert_eq!(http_get(port_b, "/data.txt").as_deref(), Some("private to b\n"));
    assert_eq!(http_get(port_a, "/data.txt").as_deref(), Some("private to a\n"), "a's data is untouched");

    assert_eq!(volumes_of(&docker, &a).await, vec![format!("archy_{a}_a-www")]);
    assert_eq!(volumes_of(&docker, &b).await, vec![format!("archy_{b}_www")]);
    let names = |cs: Vec<bollard::models::ContainerSummary>| -> Vec<String> {
        cs.into_iter().flat_map(|c| c.names.unwrap_or_default()).collect()
    };
    assert_eq!(names(containers_of(&docker, &a).await), vec![format!("/archy_{a}_a-web")]);
    assert_eq!(names(containers_of(&docker, &b).await), vec![format!("/archy_{b}_web")]);
    let status = orch.status().await.unwrap();
    assert!(status.iter().all(|s| s.state == AppState::Healthy), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_nodes_objects_are_adopted_by_label_and_keep_their_data() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("legacy");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    let v2 = verified(&web_app(&id, "1.1.0", &image.image_id, &target(&id), port));
    let source = source_with(vec![v1.clone()]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source.clone()).await;
    let node = orch.node_id().to_owned();

    // The node's files as an older node left them (desired state, stored manifest, secrets):
    // install, then replace the engine objects with the ones an older node made, named by
    // joining ids with `-`, with data in the volume.
    orch.install(&id, None).await.expect("install");
    for c in containers_of(&docker, &id).await {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        docker.remove_container(&c.id.unwrap(), Some(options)).await.unwrap();
    }
    for n in networks_of(&docker, &id).await {
        docker.remove_network(&n).await.unwrap();
    }
    for v in volumes_of(&docker, &id).await {
        docker.remove_volume(&v, None::<bollard::query_parameters::RemoveVolumeOptions>).await.unwrap();
    }
    let (old_network, old_volume, old_container) =
        (format!("archy-{id}"), format!("archy-{id}-www"), format!("archy-{id}-web"));
    let common = [("archy.managed", "true"), ("archy.app", id.as_str()), ("archy.version", "1.0.0")];
    let network_id = docker
        .create_network(NetworkCreateRequest {
            name: old_network.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels(&[&common[..], &[("archy.node", node.as_str())]].concat())),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let volume = docker
        .create_volume(VolumeCreateRequest {
            name: Some(old_volume.clone()),
            labels: Some(labels(&[&common[..], &[("archy.role", "www"), ("archy.node", node.as_str())]].concat())),
            ..Default::default()
        })
        .await
        .unwrap();
    // The container as an older node created it: the same request, under the old names.
    let m = v1.manifest();
    let mut plan = catalog::manifest::render(m).containers.remove(0);
    plan.name.clone_from(&old_container);
    plan.network.clone_from(&old_network);
    for mount in &mut plan.mounts {
        if let Mount::Volume { source, .. } = mount {
            source.clone_from(&old_volume);
        }
    }
    let derived = HostFacts::detect(&orch.config().host).resolve(m, &plan.derived_env, volume.mountpoint.as_ref());
    let secrets = SecretStore::new(orch.state_dir().secrets_dir(&id).unwrap()).read_all(&m.secrets).unwrap();
    let cx = ApplyContext { node_id: &node, network_id: &network_id, publish_ip: Some("127.0.0.1"), secrets: &secrets };
    let body = container_body(&plan, &derived, &cx);
    let options = CreateContainerOptionsBuilder::new().name(&old_container).build();
    let old_id = docker.create_container(Some(options), body).await.unwrap().id;
    let files = build(&[
        Entry::dir("www/", 0o755).owned(65534, 65534),
        Entry::file("www/data.txt", "written under the old names\n", 0o644).owned(65534, 65534),
    ]);
    let upload = bollard::query_parameters::UploadToContainerOptionsBuilder::new().path("/").build();
    docker.upload_to_container(&old_container, Some(upload), bollard::body_full(files.into())).await.unwrap();
    docker.start_container(&old_container, None).await.unwrap();

    // The new node converges: the same container, renamed; the old volume and network, kept.
    let report = orch.reconcile_once(true).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!((report.created, report.removed), (0, 0), "adopted, nothing recreated: {report:?}");
    let c = docker.inspect_container(&format!("archy_{id}_web"), None).await.expect("renamed");
    assert_eq!(c.id.as_deref(), Some(old_id.as_str()), "the same container");
    assert!(docker.inspect_container(&old_container, None).await.is_err(), "no container under the old name");
    assert_eq!(containers_of(&docker, &id).await.len(), 1, "no duplicate");
    assert_eq!(volumes_of(&docker, &id).await, vec![old_volume.clone()], "no second volume");
    assert_eq!(networks_of(&docker, &id).await, vec![old_network.clone()], "no second network");
    healthy(&orch, &id).await;
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("written under the old names\n"));

    // An update recreates the container under the new name, on the old volume.
    source.add(v2, [(target(&id), image.archive.clone())]);
    orch.update(&id, None).await.expect("update");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("written under the old names\n"), "data kept");
    let labels = docker.inspect_container(&format!("archy_{id}_web"), None).await.unwrap().config.unwrap().labels;
    assert_eq!(labels.unwrap()["archy.version"], "1.1.0");
    assert_eq!(containers_of(&docker, &id).await.len(), 1, "no duplicate after the update");
    assert_eq!(volumes_of(&docker, &id).await, vec![old_volume.clone()], "still the old volume");

    // Purge finds the old volume by its labels too.
    orch.uninstall(&id, true).await.expect("purge");
    assert!(volumes_of(&docker, &id).await.is_empty(), "purged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_held_by_another_apps_or_nodes_object_is_refused_and_left_as_it_is() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let (by_app, by_node, by_network, owner) = (app_id("held-v"), app_id("held-c"), app_id("held-n"), app_id("owner"));
    let _cleanup = Cleanup(vec![by_app.clone(), by_node.clone(), by_network.clone(), owner.clone()]);
    let manifests = [&by_app, &by_node, &by_network]
        .map(|id| verified(&web_app(id, "1.0.0", &image.image_id, &target(id), free_port())));
    let source = source_with(manifests.to_vec()).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;
    let node = orch.node_id().to_owned();
    let claimant = |app: &str| Owner { app: Some(app.to_owned()), share: None, node: Some(node.clone()) };

    // A volume under the name `by_app`'s volume gets, labelled as another app's of another node.
    let held = format!("archy_{by_app}_www");
    let foreign =
        labels(&[("archy.managed", "true"), ("archy.app", &owner), ("archy.role", "www"), ("archy.node", OTHER_NODE)]);
    let request = VolumeCreateRequest { name: Some(held.clone()), labels: Some(foreign.clone()), ..Default::default() };
    docker.create_volume(request).await.unwrap();
    let err = orch.install(&by_app, None).await.expect_err("refused");
    match &err {
        Error::OwnedElsewhere { kind: "volume", name, owner: o, claimant: c } => {
            assert_eq!(name, &held);
            assert_eq!(**o, Owner { app: Some(owner.clone()), share: None, node: Some(OTHER_NODE.to_owned()) });
            assert_eq!(**c, claimant(&by_app));
        }
        other => panic!("expected OwnedElsewhere for the volume, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains(&owner) && message.contains(OTHER_NODE), "{message}");
    assert!(message.contains(&by_app) && message.contains(&node), "{message}");
    assert_eq!(docker.inspect_volume(&held).await.unwrap().labels, foreign, "the volume is left as it is");
    assert!(containers_of(&docker, &by_app).await.is_empty(), "nothing created");
    assert!(networks_of(&docker, &by_app).await.is_empty(), "nothing created");

    // A container under the name `by_node`'s container gets, labelled as that app's on another node.
    let held = format!("archy_{by_node}_web");
    let other_node = labels(&[
        ("archy.managed", "true"),
        ("archy.app", &by_node),
        ("archy.role", "web"),
        ("archy.node", OTHER_NODE),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.image_id.clone()),
        labels: Some(other_node.clone()),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&held).build();
    let held_id = docker.create_container(Some(options), body).await.unwrap().id;
    let err = orch.install(&by_node, None).await.expect_err("refused");
    match &err {
        Error::OwnedElsewhere { kind: "container", name, owner: o, claimant: c } => {
            assert_eq!(name, &held);
            assert_eq!(**o, Owner { app: Some(by_node.clone()), share: None, node: Some(OTHER_NODE.to_owned()) });
            assert_eq!(**c, claimant(&by_node));
        }
        other => panic!("expected OwnedElsewhere for the container, got {other}"),
    }
    let c = docker.inspect_container(&held, None).await.unwrap();
    assert_eq!(c.id.as_deref(), Some(held_id.as_str()), "the container is left as it is");
    assert_eq!(c.config.unwrap().labels.unwrap(), other_node);
    assert_eq!(c.state.unwrap().status, Some(bollard::models::ContainerStateStatusEnum::CREATED), "not started");
    assert!(volumes_of(&docker, &by_node).await.is_empty(), "nothing created");
    assert!(networks_of(&docker, &by_node).await.is_empty(), "nothing created");

    // A network under the name `by_network`'s network gets, labelled for another node.
    let held = format!("archy_{by_network}");
    let request = NetworkCreateRequest {
        name: held.clone(),
        driver: Some("bridge".into()),
        labels: Some(labels(&[("archy.managed", "true"), ("archy.app", &by_network), ("archy.node", OTHER_NODE)])),
        ..Default::default()
    };
    docker.create_network(request).await.unwrap();
    let err = orch.install(&by_network, None).await.expect_err("refused");
    assert!(matches!(&err, Error::OwnedElsewhere { kind: "network", name, .. } if *name == held), "{err}");
    assert!(volumes_of(&docker, &by_network).await.is_empty(), "nothing created");
    assert!(containers_of(&docker, &by_network).await.is_empty(), "nothing created");

    // Every refusal is recorded as the app's failure, and the reconciler refuses the same way.
    let report = orch.reconcile_once(true).await.unwrap();
    assert_eq!(report.failed.len(), 3, "{report:?}");
    assert_eq!(report.created, 0, "{report:?}");
}

/// An app mounting the shared volume `share` at `/www`.
fn sharing_app(id: &str, share: &str, image_id: &str, port: u16) -> String {
    let mut t = head(id, "1.0.0");
    t.push_str(&format!(
        "permissions = [{{ kind = \"shared_volume\", name = \"{share}\" }}]\n\n[[volumes]]\nname = \"lib\"\nshared = \"{share}\"\n"
    ));
    t.push_str(&web_container(
        "web",
        image_id,
        &target(id),
        Some(port),
        "volumes = [{ volume = \"lib\", target = \"/www\" }]\ndata_uid = 65534\n",
    ));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_volume_is_found_by_its_share_and_one_of_another_node_is_refused() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let (a, b, c, owner) = (app_id("share-a"), app_id("share-b"), app_id("share-c"), app_id("owner"));
    let (share, held_share) = (app_id("lib"), app_id("held"));
    // `b` first: the shared volume (labelled with `a`) goes once no container mounts it.
    let _cleanup = Cleanup(vec![b.clone(), a.clone(), c.clone(), owner.clone()]);
    let (port_a, port_b) = (free_port(), free_port());
    let source = source_with(vec![
        verified(&sharing_app(&a, &share, &image.image_id, port_a)),
        verified(&sharing_app(&b, &share, &image.image_id, port_b)),
        verified(&sharing_app(&c, &held_share, &image.image_id, free_port())),
    ])
    .await;
    let grant = |app: &str, share: &str| {
        format!("[apps.{app}]\npermissions = [{{ kind = \"shared_volume\", name = \"{share}\" }}]\n")
    };
    let data = data_dir(&[grant(&a, &share), grant(&b, &share), grant(&c, &held_share)].concat());
    let orch = orchestrator(data.path(), source).await;

    // Created by `a` (and labelled with it), found by `b` through its share label.
    orch.install(&a, None).await.expect("install a");
    exec(&docker, &format!("archy_{a}_web"), "echo shared by a > /www/data.txt").await;
    orch.install(&b, None).await.expect("install b");
    assert_eq!(http_get(port_b, "/data.txt").as_deref(), Some("shared by a\n"));
    assert_eq!(volumes_of(&docker, &a).await, vec![format!("archy_shared.{share}")]);
    assert!(volumes_of(&docker, &b).await.is_empty(), "no second volume");

    // The name of `c`'s share is held by another node's volume of that share.
    let held = format!("archy_shared.{held_share}");
    let foreign = labels(&[
        ("archy.managed", "true"),
        ("archy.app", &owner),
        ("archy.role", "lib"),
        ("archy.shared", &held_share),
        ("archy.node", OTHER_NODE),
    ]);
    let request = VolumeCreateRequest { name: Some(held.clone()), labels: Some(foreign.clone()), ..Default::default() };
    docker.create_volume(request).await.unwrap();
    let err = orch.install(&c, None).await.expect_err("refused");
    match &err {
        Error::OwnedElsewhere { kind: "volume", name, owner: o, claimant } => {
            assert_eq!(name, &held);
            assert_eq!((o.share.as_deref(), o.node.as_deref()), (Some(held_share.as_str()), Some(OTHER_NODE)));
            assert_eq!((claimant.app.as_deref(), claimant.node.as_deref()), (Some(c.as_str()), Some(orch.node_id())));
        }
        other => panic!("expected OwnedElsewhere for the shared volume, got {other}"),
    }
    assert_eq!(docker.inspect_volume(&held).await.unwrap().labels, foreign, "left as it is");
    assert!(containers_of(&docker, &c).await.is_empty(), "nothing created");
}
