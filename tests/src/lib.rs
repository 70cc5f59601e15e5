//! Helpers for end-to-end tests that drive real `ferry` processes.
//!
//! The binary is found next to the test executable (`target/<profile>/ferry`), or at
//! `$FERRY_BIN`. Every node runs with relays disabled and bound to 127.0.0.1, so no packet
//! leaves the loopback interface.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// Path of the `ferry` binary under test.
pub fn ferry_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/ferry
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("ferry{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p ferry-cli) or set FERRY_BIN",
        bin.display()
    );
    bin
}

/// A `ferry` command for a home, offline and on loopback.
pub fn ferry(home: &Path) -> Command {
    ferry_at(home, "127.0.0.1:0")
}

/// A `ferry` command for a home, offline, bound to `bind` (a loopback address: a fixed port
/// lets a node restarted by a test be found again where its peers last saw it).
pub fn ferry_at(home: &Path, bind: &str) -> Command {
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("--home")
        .arg(home)
        .args(["--relay", "disabled", "--bind", bind])
        // The default log level, as users get it.
        .env_remove("FERRY_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// A running child whose stdout and stderr lines are collected in the background.
pub struct Proc {
    pub child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    pub stderr_seen: Vec<String>,
}

impl Proc {
    /// Spawns `cmd` with piped output.
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Proc {
            child,
            out,
            err,
            stderr_seen: Vec::new(),
        }
    }

    /// The next stdout line, waiting up to `timeout`.
    pub fn stdout_line(&mut self, timeout: Duration) -> String {
        match self.out.recv_timeout(timeout) {
            Ok(l) => l,
            Err(_) => {
                self.drain_stderr();
                panic!(
                    "no stdout line within {timeout:?}; stderr:\n{}",
                    self.stderr_seen.join("\n")
                )
            }
        }
    }

    /// Waits until a stderr line satisfies `pred`, returning it.
    pub fn wait_stderr(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(l) => {
                    self.stderr_seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "expected stderr line not seen within {timeout:?}; got:\n{}",
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }

    fn drain_stderr(&mut self) {
        while let Ok(l) = self.err.try_recv() {
            self.stderr_seen.push(l);
        }
    }

    /// Sends SIGINT (as Ctrl-C would) and waits for the exit.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        self.signal("INT")
    }

    /// Sends SIGTERM (as `kill` and systemd do) and waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM")
    }

    fn signal(&mut self, name: &str) -> std::process::ExitStatus {
        Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        self.wait(Duration::from_secs(20))
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.drain_stderr();
                return status;
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                self.drain_stderr();
                panic!(
                    "process did not exit; stderr:\n{}",
                    self.stderr_seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All stderr so far.
    pub fn stderr(&mut self) -> String {
        self.drain_stderr();
        self.stderr_seen.join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `ferry send` on `home` and returns it with its ticket.
pub fn send(home: &Path, paths: &[&Path]) -> (Proc, String) {
    let mut cmd = ferry(home);
    cmd.arg("send").args(paths);
    let mut p = Proc::spawn(cmd);
    let ticket = p.stdout_line(Duration::from_secs(60));
    assert!(ticket.starts_with("blob"), "ticket line: {ticket}");
    (p, ticket)
}

/// Deterministic incompressible bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a file, creating parents.
pub fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Asserts two trees hold the same files with the same bytes.
pub fn assert_trees_equal(a: &Path, b: &Path) {
    let (la, lb) = (list(a), list(b));
    assert_eq!(
        la,
        lb,
        "file lists of {} and {} differ",
        a.display(),
        b.display()
    );
    for rel in la {
        let (fa, fb) = (a.join(&rel), b.join(&rel));
        assert!(same_bytes(&fa, &fb), "{} differs", rel.display());
    }
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Relative paths of all files below `root`, sorted.
pub fn list(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A network namespace with only a loopback interface, removed on drop. Programs we do not
/// control (sendme enables UPnP/NAT-PMP probing) run inside it so nothing leaves the machine.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// Creates the namespace (needs root and iproute2).
    pub fn new(tag: &str) -> NetNs {
        let name = format!("ferry-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map(|s| s.success());
        assert_eq!(
            ok.ok(),
            Some(true),
            "ip netns add {name} failed (needs root and iproute2)"
        );
        let ok = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(ok.success());
        NetNs { name }
    }

    /// Two namespaces joined by a veth pair, `10.213.0.1/24` in the first and `10.213.0.2/24`
    /// in the second, each with its default route through the pair: multicast (mDNS) finds a
    /// way out, and that way leads only into the other namespace.
    pub fn pair(tag: &str) -> (NetNs, NetNs) {
        let (a, b) = (
            NetNs::new(&format!("{tag}a")),
            NetNs::new(&format!("{tag}b")),
        );
        let id = std::process::id() % 100_000;
        let (va, vb) = (format!("fv{id}a"), format!("fv{id}b"));
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap();
            assert!(ok.success(), "ip {args:?} failed");
        };
        ip(&[
            "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns",
            &b.name,
        ]);
        for (ns, dev, addr) in [(&a, &va, "10.213.0.1/24"), (&b, &vb, "10.213.0.2/24")] {
            ip(&["-n", &ns.name, "addr", "add", addr, "dev", dev]);
            ip(&["-n", &ns.name, "link", "set", dev, "up"]);
            ip(&["-n", &ns.name, "route", "add", "default", "dev", dev]);
        }
        (a, b)
    }

    /// Wraps a command to run inside the namespace.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut w = Command::new("ip");
        w.args(["netns", "exec", &self.name]);
        w.arg(cmd.get_program());
        w.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                w.env(k, v);
            }
        }
        if let Some(dir) = cmd.get_current_dir() {
            w.current_dir(dir);
        }
        w.stdin(Stdio::null());
        w
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        Command::new("ip")
            .args(["netns", "del", &self.name])
            .status()
            .ok();
    }
}

/// The sendme binary: `$SENDME_BIN`, or the copy the test setup installs.
pub fn sendme_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SENDME_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let p = home.join(".cache/ferry-tools/bin/sendme");
    assert!(
        p.exists(),
        "sendme not found at {}: the test command installs it (scripts/test.sh)",
        p.display()
    );
    p
}
