//! A malicious origin on separate hosts: two registries with the origin's keys, one serving each
//! half of the nodes, that fork the catalog's history on demand ([`SplitWorld::fork_now`]).
//! Used by `node/tests/transparency.rs` and the transparency benchmark.

use std::process::Child;
use std::time::{Duration, Instant};

use super::netns::{Host, Lab};
use super::origin::Origin;
use super::swarm_hosts::{KillOnDrop, NetNode, serve_with};

/// The two views' registries and the nodes, all running, all on the same catalog state.
pub struct SplitWorld {
    pub nodes: Vec<NetNode>,
    pub origin: Origin,
    fork: tempfile::TempDir,
    _registries: Vec<KillOnDrop>,
    _hosts: Vec<Host>,
    _lab: Lab,
}

fn url(host: &Host) -> String {
    format!("http://{}:8480", host.ip)
}

/// Starts the world: registries `oa` and `ob` on two copies of one logged origin (re-reading
/// their folders every second), `n` nodes, the first half with `oa` as their origin and the rest
/// with `ob`, every node but the first seeded with the first as a peer (the swarm forms from
/// there). Every node has synced before the fork.
pub fn split_world(tag: &str, n: usize) -> SplitWorld {
    let mut lab = Lab::new(tag);
    let origin = Origin::with_log();
    let fork = origin.fork();
    let (ha, hb) = (lab.host("oa"), lab.host("ob"));
    let fast = ["--resign-check", "1"];
    let (a, iroh_a) = serve_with(&ha, &origin.registry_folder(), &fast);
    let (b, iroh_b) = serve_with(&hb, fork.path(), &fast);
    let mut nodes: Vec<NetNode> = Vec::new();
    for i in 0..n {
        let (host, iroh) = if i < n / 2 { (&ha, &iroh_a) } else { (&hb, &iroh_b) };
        let peers: Vec<String> = nodes.first().map(NetNode::iroh).into_iter().collect();
        let mut node = NetNode::configured(
            &mut lab,
            &format!("n{}", i + 1),
            &origin.root_v1(),
            &url(host),
            &iroh.to_string(),
            &peers,
        );
        let report = node.sync_once();
        assert_eq!(report["source"], "origin", "{report}");
        node.start();
        nodes.push(node);
    }
    SplitWorld { nodes, origin, fork, _registries: vec![KillOnDrop(a), KillOnDrop(b)], _hosts: vec![ha, hb], _lab: lab }
}

impl SplitWorld {
    /// The registries start serving two histories: the same catalog version with two different
    /// states (another app, signed a few seconds apart).
    pub fn fork_now(&mut self) {
        self.origin.publish("app-a", "1.1.0");
        self.origin.publish_into(self.fork.path(), "app-b", "1.0.0", 5);
        self.wait_served();
    }

    /// Waits until both registries serve what their folders hold (they re-read them every
    /// second).
    fn wait_served(&self) {
        for (host, folder) in
            [(&self._hosts[0], self.origin.served()), (&self._hosts[1], self.fork.path().join("repository"))]
        {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                // Read again each time: a registry may re-sign what it found (a timestamp signed
                // ahead of its clock).
                let want = std::fs::read(folder.join("metadata/timestamp.json")).expect("timestamp");
                let out = host
                    .command("curl")
                    .args(["-sf", &format!("{}/metadata/timestamp.json", url(host))])
                    .output()
                    .expect("curl");
                if out.stdout == want {
                    break;
                }
                assert!(Instant::now() < deadline, "{} does not serve its view", host.name);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Both registries serve one new state again (the fork is made equal to the origin).
    pub fn publish_honestly(&mut self, id: &str, version: &str) {
        self.origin.publish(id, version);
        let (from, to) = (self.origin.served(), self.fork.path().join("repository"));
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(&to)
            .status()
            .expect("cp");
        assert!(status.success());
        self.wait_served();
    }

    /// Runs a round on every node at once (as their intervals would) and waits until every node
    /// holds a proof of the split view; the time that took. Panics after `within`.
    pub fn until_every_node_holds_the_proof(&self, within: Duration) -> Duration {
        let start = Instant::now();
        let rounds: Vec<Child> = self
            .nodes
            .iter()
            .map(|n| {
                n.host
                    .command(super::node_bin())
                    .args(["api", "--data"])
                    .arg(n.path())
                    .args(["POST", "/v1/sync"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("archy-node api")
            })
            .collect();
        let mut waiting: Vec<&NetNode> = self.nodes.iter().collect();
        while !waiting.is_empty() {
            waiting.retain(|n| n.status()["log"]["split_view"].is_null());
            assert!(
                start.elapsed() < within,
                "after {within:?}, {} nodes hold no proof of the split view: {:?}",
                waiting.len(),
                waiting.iter().map(|n| n.host.name.clone()).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = start.elapsed();
        for mut child in rounds {
            let _ = child.wait();
        }
        took
    }
}
