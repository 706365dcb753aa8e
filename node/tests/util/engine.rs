//! A container engine owned by one test: a second `dockerd` (Debian's docker.io) with its own
//! data root, exec root, socket and pid file, so a test can kill and restart it, or cut its
//! power, without touching the machine's engine or the other tests.
//!
//! Its configuration is a file (flags that repeat the machine's `/etc/docker/daemon.json` are
//! refused): its own `data-root`, `fuse-overlayfs` as the machine uses, no default bridge, no
//! iptables rules (ports are published by the userland proxy), and address pools of its own so
//! its app networks never overlap the machine engine's.
//!
//! [`TestEngine::power_cut`] does what a power cut does: every process of the engine (dockerd,
//! containerd, the shims, the containers' processes, the userland proxies, the fuse-overlayfs
//! helpers) is SIGKILLed at once; then what a reboot does: everything mounted under its folders
//! is unmounted and its exec root (a tmpfs under /run on a real host) is emptied, so the next
//! start finds no stale pid files.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `dockerd` of the test's own.
pub struct TestEngine {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The loop device of a data root on a filesystem of its own ([`TestEngine::start_on_xfs`]).
    loop_device: Option<String>,
    /// Path of its API socket (what the node's `docker_socket` names).
    pub socket: PathBuf,
}

/// Address pools of the test engines, apart from the machine engine's defaults and from
/// archy's fallback pool.
const POOL: &str = "10.215.0.0/16";

impl TestEngine {
    /// Starts a new engine and waits until it answers. Fails the test loudly when `dockerd`
    /// is missing or does not come up (with its log).
    pub fn start() -> Self {
        Self::start_with(|_| None)
    }

    /// Starts an engine whose data root (volumes included) is an XFS filesystem with reflinks
    /// (`mkfs.xfs -m reflink=1`) of `size_mib` MiB, in a sparse file mounted through a loop
    /// device: the filesystem of a home server where copies can share blocks. A power cut keeps
    /// it mounted, as a disk is there again after a reboot.
    pub fn start_on_xfs(size_mib: u64) -> Self {
        Self::start_with(|dir| {
            let image = dir.join("xfs.img");
            let file = std::fs::File::create(&image).expect("image file");
            file.set_len(size_mib << 20).expect("sparse image");
            let run = |cmd: &mut Command| {
                let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
                assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            };
            let device = run(Command::new("losetup").args(["-f", "--show"]).arg(&image));
            run(Command::new("mkfs.xfs").args(["-q", "-f", "-m", "reflink=1", &device]));
            std::fs::create_dir_all(dir.join("data")).expect("data root");
            run(Command::new("mount").arg(&device).arg(dir.join("data")));
            Some(device)
        })
    }

    fn start_with(data_root: impl FnOnce(&std::path::Path) -> Option<String>) -> Self {
        // Short paths: the engine's sockets must fit in a Unix socket address.
        let dir = tempfile::Builder::new().prefix("archy-engine-").tempdir_in("/tmp").expect("tempdir");
        let loop_device = data_root(dir.path());
        let config = serde_json::json!({
            "data-root": dir.path().join("data"),
            "storage-driver": "fuse-overlayfs",
            "bridge": "none",
            "iptables": false,
            "ip6tables": false,
            "default-address-pools": [{ "base": POOL, "size": 24 }],
            "log-driver": "json-file",
        });
        std::fs::write(dir.path().join("daemon.json"), config.to_string()).expect("engine config");
        let socket = dir.path().join("docker.sock");
        let mut engine = Self { dir, child: None, loop_device, socket };
        engine.launch();
        engine
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `unix://…`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Starts `dockerd` (again) and waits until it answers.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "the test engine is already running");
        std::fs::create_dir_all(self.path("exec")).expect("exec root");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("dockerd.log")).expect("log");
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(self.path("daemon.json"))
            .arg("--exec-root")
            .arg(self.path("exec"))
            .arg("--host")
            .arg(self.host())
            .arg("--pidfile")
            .arg(self.path("docker.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd for a test-owned engine ({e}): install docker.io"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.answers() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("wait")) {
                panic!("the test engine's dockerd exited ({status}):\n{}", self.log_tail());
            }
            assert!(Instant::now() < deadline, "the test engine did not answer in 60 s:\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether the engine answers `docker version` now.
    pub fn answers(&self) -> bool {
        self.socket.exists() && self.docker(&["version", "--format", "{{.Server.Version}}"]).status.success()
    }

    /// Runs the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").env("DOCKER_HOST", self.host()).args(args).output().expect("docker CLI")
    }

    /// A bollard client of this engine.
    pub async fn client(&self) -> bollard::Docker {
        bollard::Docker::connect_with_unix(&self.socket.display().to_string(), 120, bollard::API_DEFAULT_VERSION)
            .expect("connect to the test engine")
            .negotiate_version()
            .await
            .expect("the test engine answers")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Every process of this engine: those whose command line names its folder (dockerd,
    /// containerd, shims, fuse-overlayfs helpers) and all their descendants (containers,
    /// userland proxies).
    fn processes(&self) -> Vec<u32> {
        let marker = self.dir.path().to_string_lossy().into_owned();
        let mut parent = std::collections::HashMap::new();
        let mut roots = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                roots.push(pid);
            }
            // stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                && let Some((_, rest)) = stat.rsplit_once(") ")
                && let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok())
            {
                parent.insert(pid, ppid);
            }
        }
        let mut all: Vec<u32> = roots.clone();
        let mut grew = true;
        while grew {
            grew = false;
            for (&pid, ppid) in &parent {
                if all.contains(ppid) && !all.contains(&pid) {
                    all.push(pid);
                    grew = true;
                }
            }
        }
        all
    }

    /// Cuts the engine's power: SIGKILL to every process at once, then what a reboot does to
    /// its mounts and its exec root.
    pub fn power_cut(&mut self) {
        let pids = self.processes();
        if !pids.is_empty() {
            let _ = Command::new("kill").arg("-KILL").args(pids.iter().map(u32::to_string)).output();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.processes().is_empty() {
            assert!(Instant::now() < deadline, "the test engine's processes survived SIGKILL: {:?}", self.processes());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.unmount_all();
        let _ = std::fs::remove_dir_all(self.path("exec"));
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(self.path("docker.pid"));
    }

    /// The engine crashes and its service manager starts it again: `dockerd` alone is
    /// SIGKILLed (containerd, the shims and the containers outlive it, as under systemd's
    /// `KillMode=process`), then started again; it takes its containers back.
    pub fn crash_and_restart(&mut self) {
        let mut child = self.child.take().expect("the test engine is running");
        let _ = child.kill();
        let _ = child.wait();
        // dockerd's containerd dies with it. Where nothing reaps orphans (this sandbox has no
        // init doing it), the dead containerd stays a zombie that its pid file still names, and
        // the next dockerd would wait for it; a host's init reaps it, which this does instead.
        let pid_file = self.path("exec/containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok()) {
            let deadline = Instant::now() + Duration::from_secs(20);
            while alive(pid) {
                assert!(Instant::now() < deadline, "containerd {pid} outlived its dockerd");
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = std::fs::remove_file(&pid_file);
        }
        let _ = std::fs::remove_file(&self.socket);
        self.launch();
    }

    /// Unmounts everything mounted under the engine's folder, deepest first.
    fn unmount_all(&self) {
        let root = self.dir.path();
        let disk = self.loop_device.as_ref().map(|_| root.join("data"));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .map(|p| PathBuf::from(p.replace("\\040", " ")))
            .filter(|p| p.starts_with(root) && Some(p) != disk.as_ref())
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        points.dedup();
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(&p).output();
        }
    }
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        // Whatever the test left running goes with the engine; its networks and volumes are in
        // its data root, which the temporary folder removes.
        self.power_cut();
        if let Some(device) = self.loop_device.take() {
            let _ = Command::new("umount").arg(self.dir.path().join("data")).output();
            let _ = Command::new("losetup").arg("-d").arg(&device).output();
        }
    }
}
