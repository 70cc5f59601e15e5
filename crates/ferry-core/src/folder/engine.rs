//! A synced folder at run time: the watcher publishes local changes as records, and every
//! change to the document (remote or local) reconciles the files on disk with the outcome of
//! each path's versions ([`PathState::outcome`]).
//!
//! Work is incremental: watcher events mark paths, document events carry new records, and a
//! round ([`round`](super::round)) looks only at what was marked (a changed file, a new or
//! removed directory). The versions of every path are cached in memory. A full pass (every file
//! on disk, every record) runs at start, after the watcher overflowed, and every few minutes as
//! the safety net. Writing files is in [`apply`](super::apply), publishing changes in
//! [`publish`](super::publish), the on-disk index in [`index`](super::index).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use iroh::EndpointId;
use iroh_blobs::{api::Store, Hash};
use iroh_docs::{api::Doc, store::Query, AuthorId};
use n0_future::StreamExt;
use tokio::sync::{mpsc, Mutex};

use crate::{
    error::Result,
    folder::{
        activity::{
            Change, ChangeKind, ConflictCopy, FolderActivity, FolderState, NotSynced, Recent,
        },
        content::Content,
        decide::PathState,
        fetch::Fetcher,
        index::Index,
        place,
        records::{key_path, Records},
        scan::Scanned,
        swarm::Swarm,
        trash::Trash,
        version::{FileVersion, MAX_RECORD_SIZE},
    },
    registry::Registry,
};

/// A running synced folder.
///
/// Its parts keep their own state behind a narrow API, each tested through it: the on-disk
/// index (`Index`), the trash ([`Trash`]), the content peers may fetch (`Content`), the
/// peers (`Swarm`) and the file system's name rules ([`NameRules`](super::names::NameRules)). What remains here is the state the loop shares
/// between its steps: the cached versions, the work queued for the next round, and the
/// summaries for people.
///
/// Locks, in the order they are taken: `states` (a round holds it throughout), then `index`
/// (held while applying or publishing, and to summarise). Both are async locks, held across
/// awaits; neither is ever taken while a later one in this order is held. Every other lock
/// (`dirty`, `wanted`, `recent`, `summary`, `plans`, `refused`, `synced_dirs`, and the parts'
/// own) is a leaf: held for a few statements, never across an await, never while another
/// lock is taken.
pub struct FolderSync {
    /// The folder's document: reading peers' records, writing this device's.
    pub(super) records: Records,
    /// The document id, as text: the folder's name in the registry.
    pub(super) folder_id: String,
    pub(crate) root: PathBuf,
    pub(crate) read_only: bool,
    pub(super) device: String,
    pub(super) store: Store,
    /// Fetches the folder's blobs from its peers.
    pub(super) fetcher: Fetcher,
    /// Decides what a local change becomes.
    pub(super) publisher: super::local::Publisher,
    pub(super) registry: Registry,
    /// Files as this device last wrote or published them, by path.
    pub(super) index: Mutex<Index>,
    /// The maximal versions of every path in the document.
    pub(super) states: Mutex<BTreeMap<String, PathState>>,
    /// What the next round has to look at.
    pub(super) dirty: std::sync::Mutex<Dirty>,
    /// Woken when `dirty` gains something.
    pub(super) wake: tokio::sync::Notify,
    /// Paths whose record or content could not be fetched yet: looked at again when a peer
    /// connects, when content arrives, and shortly after each round that left them.
    pub(super) wanted: std::sync::Mutex<BTreeSet<String>>,
    /// The peers met (content is fetched from them) and which are connected.
    pub(super) swarm: Swarm,
    /// Recent changes, for people.
    pub(super) recent: std::sync::Mutex<Recent>,
    /// Counts for people, refreshed at the end of each round.
    pub(super) summary: std::sync::Mutex<Summary>,
    /// The blocks each large file being patched still lacks, by file, for the version (hash)
    /// being written: a retry fetches them before reading the file again.
    pub(super) plans: std::sync::Mutex<std::collections::HashMap<PathBuf, (Hash, Vec<u64>)>>,
    pub(super) trash: Trash,
    /// The content peers may fetch from this device.
    pub(super) content: Content,
    /// Paths that cannot be written here, and why: reported, and not retried until the path
    /// changes or the next full pass.
    pub(super) refused: std::sync::Mutex<BTreeMap<String, String>>,
    /// Directories files were renamed into since their entries were last flushed to disk.
    pub(super) synced_dirs: std::sync::Mutex<BTreeSet<PathBuf>>,
    /// How long and how much the trash keeps: (max age in ms, max bytes).
    pub(super) trash_keep: (u64, u64),
    /// Which names the folder's file system holds apart, and which it cannot hold.
    pub(super) names: super::names::NameRules,
}

/// What a round leaves for [`FolderSync::activity`].
#[derive(Debug, Default, Clone)]
pub(super) struct Summary {
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) waiting: u64,
    pub(super) waiting_bytes: u64,
    pub(super) conflicts: Vec<ConflictCopy>,
    /// Files looked at so far in the current full pass, and how many it has.
    pub(super) scan: (u64, u64),
    /// 0: idle, 1: a round runs, 2: a full pass runs.
    pub(super) busy: u8,
    pub(super) error: Option<String>,
}

impl std::fmt::Debug for FolderSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderSync")
            .field("root", &self.root)
            .finish()
    }
}

impl FolderSync {
    /// Wraps an open document for the folder at `root`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        doc: Doc,
        root: PathBuf,
        read_only: bool,
        author: AuthorId,
        device: EndpointId,
        settings: &crate::settings::Settings,
        store: Store,
        endpoint: iroh::Endpoint,
        registry: Registry,
    ) -> Arc<FolderSync> {
        // Loaded before anything runs: it tells files this device wrote from files changed
        // while it was not running.
        let folder_id = doc.id().to_string();
        let names = super::names::NameRules::detect(&root);
        let index = Index::load(&root, &folder_id, names.exec);
        // The files this folder holds are its own content: servable to its members.
        for known in index.values() {
            if let Some(h) = super::version::parse_hash(&known.hash) {
                registry.allow_folder(&folder_id, h);
            }
        }
        let fetcher = Fetcher::new(
            store.clone(),
            endpoint,
            root.join(super::ignore::STATE_DIR).join("incoming"),
        );
        Arc::new(FolderSync {
            fetcher,
            publisher: super::local::Publisher::new(
                device.to_string(),
                settings.device_name.clone(),
            ),
            content: Content::new(&root, store.clone(), registry.clone(), &folder_id),
            records: Records::new(
                doc,
                author,
                device.to_string(),
                store.clone(),
                registry.clone(),
            ),
            folder_id,
            trash: Trash::new(&root),
            names,
            root,
            read_only,
            device: device.to_string(),
            trash_keep: (
                u64::from(settings.trash_days) * 86_400_000,
                u64::from(settings.trash_mib) << 20,
            ),
            store,
            registry,
            index: Mutex::new(index),
            states: Mutex::new(BTreeMap::new()),
            dirty: std::sync::Mutex::new(Dirty {
                full: true,
                ..Default::default()
            }),
            wake: tokio::sync::Notify::new(),
            wanted: std::sync::Mutex::new(BTreeSet::new()),
            recent: std::sync::Mutex::new(Recent::default()),
            summary: std::sync::Mutex::new(Summary {
                busy: 2,
                ..Default::default()
            }),
            swarm: Swarm::new(device),
            plans: std::sync::Mutex::new(Default::default()),
            refused: std::sync::Mutex::new(BTreeMap::new()),
            synced_dirs: std::sync::Mutex::new(BTreeSet::new()),
        })
    }

    /// The folder's document.
    pub(crate) fn doc(&self) -> &Doc {
        self.records.doc()
    }

    /// What the folder's file system says of `rel`, whose metadata is `meta`: the executable
    /// bit only where the file system keeps one.
    pub(super) fn seen(&self, rel: String, meta: &std::fs::Metadata) -> Scanned {
        Scanned::of(rel, meta).trusting_exec(self.names.exec)
    }

    /// Reports every newly seen peer on `tx`.
    pub fn on_peer(&self, tx: mpsc::UnboundedSender<EndpointId>) {
        self.swarm.on_new(tx);
    }

    /// Remembers a peer of this folder (from the ticket, or seen in the swarm).
    pub fn add_peer(&self, peer: EndpointId) {
        if peer.to_string() == self.device {
            return;
        }
        // Only the folder's peers are served its records and content.
        self.registry.add_member(&self.folder_id, peer);
        self.swarm.meet(peer);
    }

    /// What the folder is doing, for people. Cheap: read from memory.
    pub fn activity(&self) -> FolderActivity {
        let summary = self.summary.lock().expect("summary lock").clone();
        let peers = self.swarm.list();
        let not_synced: Vec<NotSynced> = self
            .refused
            .lock()
            .expect("refused lock")
            .iter()
            .map(|(path, reason)| NotSynced {
                path: path.clone(),
                reason: reason.clone(),
            })
            .collect();
        let state = match (summary.busy, &summary.error) {
            (2, _) => FolderState::Scanning,
            (_, Some(_)) => FolderState::Error,
            (1, _) => FolderState::Syncing,
            _ if summary.waiting > 0 => FolderState::Syncing,
            _ if !not_synced.is_empty() => FolderState::Incomplete,
            _ => FolderState::UpToDate,
        };
        FolderActivity {
            state,
            scanned: summary.scan.0,
            to_scan: summary.scan.1,
            files: summary.files,
            bytes: summary.bytes,
            waiting: summary.waiting,
            waiting_bytes: summary.waiting_bytes,
            peers,
            recent: self.recent.lock().expect("recent lock").list(),
            conflicts: summary.conflicts,
            not_synced,
            error: summary.error,
        }
    }

    /// Records how far the current full pass is.
    pub(super) fn scan_progress(&self, done: u64, total: u64) {
        self.summary.lock().expect("summary lock").scan = (done, total);
    }

    pub(super) fn note(&self, path: &str, kind: ChangeKind, by: &FileVersion) {
        let by = if by.device == self.device {
            String::new()
        } else {
            by.device_name.clone()
        };
        self.recent.lock().expect("recent lock").push(Change {
            path: path.to_string(),
            kind,
            by,
            at_ms: crate::history::now_ms(),
        });
    }

    /// The peers content is fetched from: those met in the folder's swarm and those the
    /// document syncs with.
    pub(super) async fn fetch_peers(&self) -> Vec<EndpointId> {
        let mut peers = self.swarm.known();
        for id in self.records.sync_peers().await {
            if !peers.contains(&id) {
                peers.push(id);
            }
        }
        peers
    }

    /// Fetches blobs into the home's store from the folder's peers, each `(hash, at most
    /// this many bytes)` (see [`Fetcher::fetch`]).
    pub(super) async fn fetch(&self, wants: &[(Hash, u64)]) -> bool {
        self.fetcher.fetch(&self.fetch_peers().await, wants).await
    }

    /// The versions of the paths matching `query`, after fetching records that had not
    /// arrived. Also returns the paths whose records are still missing (the caller retries).
    pub(super) async fn gather(
        &self,
        query: impl Into<Query>,
    ) -> Result<(BTreeMap<String, PathState>, BTreeSet<String>)> {
        let query: Query = query.into();
        let (states, missing) = self
            .records
            .read(query.clone(), &Default::default())
            .await?;
        if missing.is_empty() {
            return Ok((states, BTreeSet::new()));
        }
        let wants: Vec<(Hash, u64)> = missing
            .iter()
            .map(|(_, h)| (*h, MAX_RECORD_SIZE as u64))
            .collect();
        self.fetch(&wants).await;
        let fetched = missing.iter().map(|(_, h)| *h).collect();
        let (states, missing) = self.records.read(query, &fetched).await?;
        Ok((states, missing.into_iter().map(|(rel, _)| rel).collect()))
    }

    /// Adds work for the next round and wakes the loop.
    pub(super) fn mark(&self, f: impl FnOnce(&mut Dirty)) {
        f(&mut self.dirty.lock().expect("dirty lock"));
        self.wake.notify_one();
    }

    /// Reconciles the document with every known peer again. iroh-docs syncs when a peer joins
    /// and then relies on gossip; an entry inserted while the gossip mesh was still forming
    /// (a peer joining right after the folder was shared) is otherwise not seen by that peer
    /// until something else triggers a sync. Reconciling documents that already agree costs a
    /// few small messages.
    async fn resync(&self) {
        let peers: Vec<iroh::EndpointAddr> = self
            .swarm
            .known()
            .into_iter()
            .map(iroh::EndpointAddr::new)
            .collect();
        if peers.is_empty() {
            return;
        }
        if let Err(e) = self.records.doc().start_sync(peers).await {
            tracing::debug!("resyncing {}: {e}", self.root.display());
        }
    }

    /// Looks again at the paths that were waiting for a peer or for content.
    fn retry_wanted(&self) {
        let wanted = self.wanted.lock().expect("wanted lock").clone();
        if !wanted.is_empty() {
            self.mark(|d| d.keys.extend(wanted));
        }
    }

    /// Runs the folder until `stop` fires: watches the disk and the document.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        if let Err(e) = self.content.allow_kept().await {
            tracing::warn!("{}: reading what the folder kept: {e}", self.root.display());
        }
        let me = self.clone();
        let root = self.root.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) if ev.need_rescan() => me.mark(|d| d.full = true),
                Ok(ev) if !ev.kind.is_access() => {
                    let rels: Vec<String> =
                        ev.paths.iter().filter_map(|p| relative(&root, p)).collect();
                    if !rels.is_empty() {
                        me.mark(|d| d.disk.extend(rels));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("watcher: {e}");
                    me.mark(|d| d.full = true);
                }
            })
            .ok();
        if let Some(w) = watcher.as_mut() {
            use notify::Watcher;
            if let Err(e) = w.watch(&self.root, notify::RecursiveMode::Recursive) {
                tracing::warn!("cannot watch {}: {e}", self.root.display());
            }
        }
        let mut events = match self.records.doc().subscribe().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot follow the folder document: {e}");
                return;
            }
        };
        let me = self.clone();
        let follower = tokio::spawn(async move {
            use iroh_docs::engine::LiveEvent;
            while let Some(ev) = events.next().await {
                let Ok(ev) = ev else { break };
                match &ev {
                    LiveEvent::InsertRemote { from, entry, .. } => {
                        me.add_peer(*from);
                        if let Some(rel) = key_path(entry.key()) {
                            if entry.content_len() <= MAX_RECORD_SIZE as u64 {
                                let hash = entry.content_hash();
                                me.mark(|d| d.records.push((rel, hash)));
                            }
                        }
                    }
                    // This device's own records are in the cache already (see `publish`).
                    LiveEvent::InsertLocal { .. } => {}
                    LiveEvent::NeighborUp(peer) => {
                        me.add_peer(*peer);
                        me.swarm.set_connected(*peer, true);
                        me.retry_wanted();
                    }
                    LiveEvent::SyncFinished(sync) => me.add_peer(sync.peer),
                    LiveEvent::NeighborDown(peer) => {
                        me.swarm.set_connected(*peer, false);
                    }
                    LiveEvent::ContentReady { .. } | LiveEvent::PendingContentReady => {
                        me.retry_wanted()
                    }
                }
            }
        });
        let mut rescan = tokio::time::interval(RESCAN_EVERY);
        rescan.tick().await; // the first tick is immediate; the start already does a full pass
        let mut retry = tokio::time::interval(Duration::from_millis(500));
        let mut save = tokio::time::interval(SAVE_EVERY);
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.tick().await; // joining or starting the folder has just synced
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = rescan.tick() => self.mark(|d| d.full = true),
                _ = retry.tick() => self.retry_wanted(),
                _ = save.tick() => {
                    self.save_index().await;
                    continue;
                }
                _ = resync.tick() => {
                    self.resync().await;
                    continue;
                }
                _ = self.wake.notified() => {
                    // Batch whatever else arrives within a short window.
                    tokio::time::sleep(BATCH_WINDOW).await;
                }
            }
            self.round().await;
        }
        follower.abort();
        self.save_index().await;
        // The watcher stops with the loop.
        drop(watcher);
    }
}

/// How many changed files a folder copies into the store and publishes at once.
pub(super) const PUBLISH_PARALLEL: usize = 16;

/// Above this many changed keys a round reads the whole document in one pass instead of
/// querying key by key.
pub(super) const KEYS_PER_QUERY_MAX: usize = 256;

/// How long events are collected before a round runs.
pub(super) const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// How often the index is saved when it changed (and when the folder stops).
pub(super) const SAVE_EVERY: Duration = Duration::from_secs(2);

/// How often a folder reconciles its document with its peers again (see `resync`).
pub(super) const RESYNC_EVERY: Duration = Duration::from_secs(10);

/// How often every file and every record is looked at, whatever the watcher said.
pub(super) const RESCAN_EVERY: Duration = Duration::from_secs(300);

/// What the next round has to look at.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    /// Paths the watcher saw change, relative to the folder.
    pub(super) disk: BTreeSet<String>,
    /// Paths to read again from the document (their records were missing before).
    pub(super) keys: BTreeSet<String>,
    /// Records that arrived from peers: path and record blob.
    pub(super) records: Vec<(String, Hash)>,
    /// Everything.
    pub(super) full: bool,
}

impl Dirty {
    pub(super) fn is_empty(&self) -> bool {
        !self.full && self.disk.is_empty() && self.keys.is_empty() && self.records.is_empty()
    }
}

/// `path` relative to `root`, `/`-separated; `None` outside it, in Ferry's own state, or for
/// Ferry's temporary files (its own writes need no second look).
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = super::scan::rel_string(path.strip_prefix(root).ok()?)?;
    if rel.is_empty() || place::is_state_path(&rel) {
        return None;
    }
    Some(rel)
}
