//! Helpers shared by the in-process tests: temp homes, loopback nodes, deterministic data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ferry_core::{
    progress::ShareEvent, CancellationToken, Node, NodeConfig, ReceiveSummary, Share,
};
use tokio::sync::mpsc;

/// A temp dir holding the homes and folders of one test, and the nodes it spawned.
///
/// The nodes are shut down when the `Env` is dropped (in a multi-thread runtime): a node
/// merely dropped leaves its document engine and store to stop in whatever order their
/// tasks are torn down, and the store's drop waits for its runtime, which could hang.
pub struct Env {
    pub dir: tempfile::TempDir,
    nodes: std::sync::Mutex<Vec<Node>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        let nodes = std::mem::take(&mut *self.nodes.lock().unwrap());
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if nodes.is_empty() || handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread
        {
            return;
        }
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let limit = std::time::Duration::from_secs(20);
                let all = async {
                    for node in &nodes {
                        // A node the test shut down already says so; that is fine.
                        let _ = node.shutdown().await;
                    }
                };
                if tokio::time::timeout(limit, all).await.is_err() {
                    eprintln!("nodes did not shut down within {limit:?}");
                }
            })
        });
    }
}

impl Env {
    pub fn new() -> Self {
        if let Ok(filter) = std::env::var("FERRY_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        Env {
            dir: tempfile::tempdir().unwrap(),
            nodes: Default::default(),
        }
    }

    pub fn home(&self, name: &str) -> PathBuf {
        self.dir.path().join("homes").join(name)
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A node with relays disabled, bound to loopback.
    pub async fn node(&self, name: &str) -> Node {
        let node = Node::spawn(NodeConfig::local(self.home(name)))
            .await
            .unwrap();
        self.keep(&node);
        node
    }

    /// Shuts `node` down with the others when the test ends.
    pub fn keep(&self, node: &Node) {
        self.nodes.lock().unwrap().push(node.clone());
    }
}

/// A node whose uploads are limited to `rate` bytes per second (which also counts them).
pub async fn limited_node(env: &Env, name: &str, rate: u64) -> Node {
    let config = NodeConfig {
        upload: ferry_core::limits::RateLimits {
            total: Some(rate),
            per_peer: None,
        },
        ..NodeConfig::local(env.home(name))
    };
    let node = Node::spawn(config).await.unwrap();
    env.keep(&node);
    node
}

/// A bare iroh endpoint on loopback with no relay and no port mapping, for tests that play a
/// peer Ferry does not control.
pub async fn loopback_endpoint() -> iroh::Endpoint {
    iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .relay_mode(iroh::RelayMode::Disabled)
        .portmapper_config(iroh::endpoint::PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .bind()
        .await
        .unwrap()
}

pub fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Deterministic, incompressible bytes.
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

pub async fn share(node: &Node, paths: &[PathBuf]) -> (Share, mpsc::UnboundedReceiver<ShareEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let share = node.share(paths, tx).await.unwrap();
    (share, rx)
}

pub async fn receive(node: &Node, ticket: &str, dest: &Path) -> ferry_core::Result<ReceiveSummary> {
    let ticket: ferry_core::Ticket = ticket.parse()?;
    let (tx, _rx) = mpsc::unbounded_channel();
    node.receive(&ticket, dest, tx, CancellationToken::new())
        .await
}

/// Every file below `a` exists below `b` with the same bytes, and nothing else does.
pub fn assert_trees_equal(a: &Path, b: &Path) {
    let list = |root: &Path| {
        let mut v: Vec<PathBuf> = walk(root)
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb, "file lists differ");
    for rel in la {
        assert_eq!(
            std::fs::read(a.join(&rel)).unwrap(),
            std::fs::read(b.join(&rel)).unwrap(),
            "{} differs",
            rel.display()
        );
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every file under `dir` (its own state included); a directory that cannot be read counts
/// as empty.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Live files of a folder (not its `.ferry` state), with their contents.
pub fn live_tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let rules = ferry_core::folder::ignore::IgnoreRules::load(root);
    ferry_core::folder::scan::scan(root, &rules)
        .into_iter()
        .filter(|s| !s.dir)
        .map(|s| {
            let data = std::fs::read(root.join(&s.rel)).unwrap_or_default();
            (s.rel, data)
        })
        .collect()
}

/// The synced directories of a folder.
pub fn dirs_tree(root: &Path) -> std::collections::BTreeSet<String> {
    let rules = ferry_core::folder::ignore::IgnoreRules::load(root);
    ferry_core::folder::scan::scan(root, &rules)
        .into_iter()
        .filter(|s| s.dir)
        .map(|s| s.rel)
        .collect()
}

pub fn trashed_contents(root: &Path) -> Vec<Vec<u8>> {
    let t = ferry_core::folder::trash::Trash::new(root);
    t.list()
        .into_iter()
        .filter_map(|e| std::fs::read(root.join(".ferry/trash").join(&e.id).join(&e.original)).ok())
        .collect()
}

/// Polls until `f` holds, failing after 30 s with `what`.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Polls until `node`'s store holds `hash` complete, failing after 30 s with `what`.
pub async fn store_gets(node: &Node, hash: iroh_blobs::Hash, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !node.store().has(hash).await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Copies a directory tree (a node's home, to restart it in the same process: the old node's
/// home stays locked until the process ends).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A file's text, if it is there.
pub fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// Two nodes syncing one folder: `a` shared `a_dir` (holding `files`), `b` joined into
/// `b_dir`. The files may not have reached `b` yet.
pub struct SharedFolder {
    pub a: Node,
    pub b: Node,
    pub a_dir: PathBuf,
    pub b_dir: PathBuf,
    pub ticket: String,
}

pub async fn shared_folder(env: &Env, read_only: bool, files: &[(&str, &[u8])]) -> SharedFolder {
    let a_dir = env.dir("a-folder");
    let b_dir = env.dir("b-folder");
    for (name, data) in files {
        write(&a_dir.join(name), data);
    }
    let a = env.node("a").await;
    let b = env.node("b").await;
    let ticket = a.folder_share(a_dir.clone(), read_only).await.unwrap();
    b.folder_join(&ticket, b_dir.clone()).await.unwrap();
    SharedFolder {
        a,
        b,
        a_dir,
        b_dir,
        ticket,
    }
}

/// Like [`shared_folder`], once b holds every one of `files` with its content.
pub async fn synced_folder(env: &Env, read_only: bool, files: &[(&str, &[u8])]) -> SharedFolder {
    let shared = shared_folder(env, read_only, files).await;
    let holds = |name: &str, data: &[u8]| {
        let path = shared.b_dir.join(name);
        std::fs::metadata(&path).is_ok_and(|m| m.len() == data.len() as u64)
            && std::fs::read(&path).is_ok_and(|d| d == data)
    };
    eventually("b holds the shared files", || {
        files.iter().all(|(name, data)| holds(name, data))
    })
    .await;
    shared
}

/// The document id a folder ticket names.
pub fn ticket_namespace(ticket: &str) -> iroh_docs::NamespaceId {
    let t: iroh_docs::DocTicket = ticket.parse().unwrap();
    t.capability.id()
}

/// What Ferry itself uses on disk for a folder: its home and the folder's `.ferry/` (the trash
/// left out, as the user's own versioning), each file counted once however many names it has,
/// and a file that is also one of the folder's own files not counted (a second name of it
/// costs nothing).
#[cfg(unix)]
pub fn own_disk_use(home: &Path, folder: &Path) -> u64 {
    use std::{collections::HashSet, os::unix::fs::MetadataExt};
    fn walk(dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut Vec<std::fs::Metadata>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if skip(&path) {
                continue;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => walk(&path, skip, out),
                Ok(m) => out.push(m),
                Err(_) => {}
            }
        }
    }
    let state = folder.join(".ferry");
    let mut users = Vec::new();
    walk(folder, &|p| p == state, &mut users);
    let users: HashSet<(u64, u64)> = users.iter().map(|m| (m.dev(), m.ino())).collect();
    let mut own = Vec::new();
    walk(home, &|_| false, &mut own);
    let trash = state.join("trash");
    walk(&state, &|p| p == trash, &mut own);
    let mut seen = HashSet::new();
    own.iter()
        .filter(|m| !users.contains(&(m.dev(), m.ino())) && seen.insert((m.dev(), m.ino())))
        .map(|m| m.blocks() * 512)
        .sum()
}
