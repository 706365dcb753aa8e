//! Hosts as Linux network namespaces on a private switch, for tests that need separate machines
//! on a network they can break: cut a host off, block two hosts from each other, or limit a
//! host's uplink.
//!
//! A [`Lab`] is one bridge (`br0`) inside a network namespace of its own (`archy-<tag>-sw`), so
//! nothing is added to the root namespace: no links, no addresses, no routes, and none of its
//! firewall rules apply (the machine's Docker sets the root `FORWARD` policy to `DROP`; with
//! `br_netfilter` loaded, bridged frames go through the switch namespace's own, empty, tables).
//! Each [`Host`] is a namespace (`archy-<tag>-<name>`) whose only link besides `lo` is `eth0`,
//! one end of a veth pair whose other end is a port of the bridge, with an address in
//! 10.213.0.0/16. There is no route out of the lab, so nothing a test does leaves the machine.
//!
//! Everything runs through `ip`, `tc` and `iptables` as root; every step that fails panics with
//! the command and its stderr, so a test that cannot build its lab fails loudly instead of
//! skipping. [`Lab`]'s drop kills what still runs in its namespaces and deletes them.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::process::Command;

/// Held by each test that builds a lab: each starts a dozen processes on separate hosts, and two
/// at once on two cores would measure the machine, not archy.
#[allow(dead_code, reason = "the benchmarks include this file and run one lab at a time anyway")]
pub static ONE_LAB_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The most hosts a lab holds (their addresses are 10.213.0.1 to 10.213.0.250).
const MAX_HOSTS: usize = 250;

/// A private switch: one bridge inside its own network namespace, so nothing touches the root
/// namespace.
pub struct Lab {
    /// The test's tag, in every namespace and link name.
    tag: String,
    /// The switch's namespace.
    switch_ns: String,
    /// Every namespace made so far (the switch's first), for the drop to delete.
    namespaces: Vec<String>,
    /// The hosts' names, in creation order (a host's index gives its address).
    hosts: Vec<String>,
}

/// A host of a [`Lab`]: its own network namespace with `eth0` on the lab's switch. A handle:
/// clones name the same host, and it stays usable only while its lab lives.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its name in the lab (what [`Lab::host`] was given).
    pub name: String,
    /// Its network namespace (`archy-<tag>-<name>`).
    pub ns: String,
    /// The address of its `eth0` (a /16 shared by the lab's hosts).
    pub ip: Ipv4Addr,
    /// The switch's namespace, where [`Host::switch_link`] is.
    switch_ns: String,
    /// The switch-side end of its veth pair, a port of `br0`.
    switch_link: String,
}

/// Whether `s` is 1 to `max` characters of `[a-z0-9]`.
fn is_short_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Runs `cmd` and returns its stdout; panics with the command and its stderr unless it
/// succeeds.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} does not run: {e} (are ip, tc and iptables installed?)"));
    assert!(out.status.success(), "{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip <args>`, run with [`run`].
fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

/// The pids of the processes in the network namespace `ns`; none when it cannot be listed.
fn pids_in(ns: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills (SIGKILL) every process in the network namespace `ns` but this one, then deletes the
/// namespace, ignoring every error: the cleanup of a lab.
fn delete_ns(ns: &str) {
    let me = std::process::id();
    for pid in pids_in(ns).into_iter().filter(|&pid| pid != me) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
}

impl Lab {
    /// A new lab for the test tagged `tag`: 1 to 6 characters of `[a-z0-9]`, unique per test,
    /// used in namespace and link names. Creates the namespace `archy-<tag>-sw` with a bridge
    /// `br0` up, after deleting the leftovers of an earlier run with the same tag (namespaces
    /// `archy-<tag>-*`, and the processes in them).
    ///
    /// Panics, naming the failing `ip` command and its stderr, when the namespaces cannot be
    /// made (e.g. not root): a test must fail loudly, never skip.
    pub fn new(tag: &str) -> Lab {
        assert!(is_short_name(tag, 6), "lab tag {tag:?}: 1 to 6 characters of [a-z0-9]");
        let prefix = format!("archy-{tag}-");
        // `ip netns list` prints `name` or `name (id: N)`, one a line.
        for line in ip(&["netns", "list"]).lines() {
            let ns = line.split_whitespace().next().unwrap_or_default();
            if ns.starts_with(&prefix) {
                delete_ns(ns);
            }
        }
        let switch_ns = format!("{prefix}sw");
        // The lab exists before its first namespace does, so a panic below deletes what was made.
        let mut lab =
            Lab { tag: tag.to_owned(), switch_ns: switch_ns.clone(), namespaces: Vec::new(), hosts: Vec::new() };
        ip(&["netns", "add", &switch_ns]);
        lab.namespaces.push(switch_ns.clone());
        ip(&["-n", &switch_ns, "link", "set", "lo", "up"]);
        ip(&["-n", &switch_ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch_ns, "link", "set", "br0", "up"]);
        lab
    }

    /// Adds a host named `name` (1 to 4 characters of `[a-z0-9]`, unique in the lab, not `sw`):
    /// the namespace `archy-<tag>-<name>` with `lo` up, and a veth pair whose switch end
    /// (`<tag>-<name>`, in the switch's namespace) is a port of `br0` and whose host end is
    /// `eth0`, up, with the address 10.213.0.`n`/16, hosts numbered from 1 in creation order.
    /// At most 250 hosts.
    pub fn host(&mut self, name: &str) -> Host {
        assert!(is_short_name(name, 4), "host name {name:?}: 1 to 4 characters of [a-z0-9]");
        assert!(name != "sw", "host name \"sw\" is the switch's");
        assert!(!self.hosts.iter().any(|h| h == name), "lab {:?} has a host {name:?} already", self.tag);
        assert!(self.hosts.len() < MAX_HOSTS, "lab {:?} is full ({MAX_HOSTS} hosts)", self.tag);
        let n = u8::try_from(self.hosts.len() + 1).expect("at most 250 hosts");
        let host = Host {
            name: name.to_owned(),
            ns: format!("archy-{}-{name}", self.tag),
            ip: Ipv4Addr::new(10, 213, 0, n),
            switch_ns: self.switch_ns.clone(),
            switch_link: format!("{}-{name}", self.tag),
        };
        ip(&["netns", "add", &host.ns]);
        self.namespaces.push(host.ns.clone());
        self.hosts.push(name.to_owned());
        ip(&["-n", &host.ns, "link", "set", "lo", "up"]);
        // Both ends are made from inside the switch's namespace: the root namespace never holds
        // either of them, even for a moment.
        ip(&[
            "-n",
            &self.switch_ns,
            "link",
            "add",
            &host.switch_link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &host.ns,
        ]);
        ip(&["-n", &self.switch_ns, "link", "set", &host.switch_link, "master", "br0"]);
        ip(&["-n", &self.switch_ns, "link", "set", &host.switch_link, "up"]);
        ip(&["-n", &host.ns, "addr", "add", &format!("{}/16", host.ip), "dev", "eth0"]);
        ip(&["-n", &host.ns, "link", "set", "eth0", "up"]);
        host
    }
}

impl Drop for Lab {
    /// Kills (SIGKILL) whatever still runs in the lab's namespaces and deletes them, ignoring
    /// errors. Stopping the test's processes cleanly is the caller's job.
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            delete_ns(ns);
        }
    }
}

impl Host {
    /// A command that runs `program` inside this host's namespace (`ip netns exec <ns>
    /// <program>`); the caller adds the arguments.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// Runs `program` with `args` inside this host's namespace; panics with the command and its
    /// stderr unless it succeeds.
    fn run_in(&self, program: &str, args: &[&str]) -> String {
        run(self.command(program).args(args))
    }

    /// Cuts this host off the switch (its switch-side veth end `down`): nothing reaches it,
    /// nothing leaves it. Its own `eth0` stays up, with its address.
    pub fn cut(&self) {
        ip(&["-n", &self.switch_ns, "link", "set", &self.switch_link, "down"]);
    }

    /// Undoes [`Host::cut`], and forgets the neighbours that could not be resolved meanwhile:
    /// this host's (`ip neigh flush dev eth0`) and the other hosts' entries for it. Otherwise an
    /// address still being resolved when the link comes back can fail its last ARP probe and
    /// drop the next packets for a few seconds. TCP connections resume at their next
    /// retransmission, as after a real cable is plugged back.
    pub fn heal(&self) {
        ip(&["-n", &self.switch_ns, "link", "set", &self.switch_link, "up"]);
        ip(&["-n", &self.ns, "neigh", "flush", "dev", "eth0"]);
        // The lab's other hosts are the namespaces named like this one's, the switch's aside.
        let prefix = self.switch_ns.strip_suffix("sw").expect("a switch namespace ends in sw");
        for line in ip(&["netns", "list"]).lines() {
            let ns = line.split_whitespace().next().unwrap_or_default();
            if ns.starts_with(prefix) && ns != self.switch_ns && ns != self.ns {
                ip(&["-n", ns, "neigh", "flush", "to", &self.ip.to_string()]);
            }
        }
    }

    /// The two `iptables` rules that drop what this host exchanges with `other`, without their
    /// action (`-A`, `-C`, `-D`).
    fn block_rules(other: &Host) -> [[String; 5]; 2] {
        let other = other.ip.to_string();
        let rule = |chain: &str, dir: &str| [chain, dir, other.as_str(), "-j", "DROP"].map(str::to_owned);
        [rule("INPUT", "-s"), rule("OUTPUT", "-d")]
    }

    /// Drops every packet between this host and `other`, both ways: `iptables` rules in this
    /// host's namespace (`INPUT -s <other>` and `OUTPUT -d <other>`, `-j DROP`). Blocking twice
    /// adds nothing.
    pub fn block(&self, other: &Host) {
        for rule in Self::block_rules(other) {
            let present =
                self.command("iptables").args(["-w", "-C"]).args(&rule).output().is_ok_and(|o| o.status.success());
            if !present {
                run(self.command("iptables").args(["-w", "-A"]).args(&rule));
            }
        }
    }

    /// Removes the rules of [`Host::block`]; panics when they are not there.
    pub fn allow(&self, other: &Host) {
        for rule in Self::block_rules(other) {
            run(self.command("iptables").args(["-w", "-D"]).args(&rule));
        }
    }

    /// Limits what this host sends (its uplink, `eth0`'s egress) to `mbit` Mbit/s with a token
    /// bucket (`tc qdisc replace dev eth0 root tbf`, latency 50 ms), replacing any earlier
    /// limit. The bucket holds a hundredth of a second at that rate, at least 32 KiB (so it
    /// passes full-size packets at any rate and stays under the kernel's per-tick minimum).
    pub fn shape_uplink(&self, mbit: u32) {
        assert!(mbit > 0, "an uplink of 0 Mbit/s");
        let burst = (u64::from(mbit) * 1_000_000 / 8 / 100).max(32 * 1024);
        let rate = format!("{mbit}mbit");
        let burst = burst.to_string();
        self.run_in(
            "tc",
            &["qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", &rate, "burst", &burst, "latency", "50ms"],
        );
    }

    /// Bytes sent by this host's `eth0` so far (its `statistics/tx_bytes`).
    pub fn tx_bytes(&self) -> u64 {
        let text = self.run_in("cat", &["/sys/class/net/eth0/statistics/tx_bytes"]);
        text.trim().parse().unwrap_or_else(|e| panic!("tx_bytes of {} is {text:?}: {e}", self.ns))
    }
}
