//! A synced folder at run time: the watcher publishes local changes as records, and every
//! change to the document (remote or local) reconciles the files on disk with the outcome of
//! each path's versions ([`PathState::outcome`]).
//!
//! Work is incremental: watcher events mark paths, document events carry new records, and a
//! round (`round`) looks only at what was marked (a changed file, a new or
//! removed directory). The versions of the paths are cached in memory, those of settled
//! paths read from the document again when they change (`states`). A full pass (every file
//! on disk, every record) runs at start, after the watcher overflowed, and every few minutes as
//! the safety net. Writing files is in `apply`, publishing changes in
//! `publish`; the parts they drive are listed on [`FolderSync`].

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use iroh::EndpointId;
use iroh_blobs::{api::Store, Hash};
use iroh_docs::api::Doc;
use n0_future::StreamExt;
use tokio::sync::{mpsc, Mutex};

use crate::{
    error::Result,
    folder::{
        activity::{Change, ChangeKind, FolderActivity},
        content::Content,
        decide::PathState,
        fetch::Fetcher,
        index::Index,
        local::Publisher,
        place,
        queue::{Dirty, Queue},
        records::{key_path, Keys, Records},
        report::Report,
        resync::{Due, Resync, RESYNC_EVERY, RESYNC_QUIET},
        scan::Scanned,
        states::States,
        swarm::Swarm,
        trash::Trash,
        version::{FileVersion, MAX_RECORD_SIZE},
    },
    registry::Registry,
};

/// A running synced folder.
///
/// Its parts keep their own state behind a narrow API, each unit-tested through it: the
/// document's records (`Records`), the fetcher (`Fetcher`), the publisher's decisions
/// (`Publisher`), the on-disk index (`Index`), the trash ([`Trash`]), the content peers may
/// fetch (`Content`), the peers (`Swarm`), the file system's name rules
/// ([`NameRules`](super::names::NameRules)), the work queued for the next round (`Queue`)
/// and what people are told (`Report`). The loop's steps, a round (`round`),
/// publishing (`publish`) and applying (`apply`), are
/// methods here that drive those parts; what they share is the cached versions (`states`)
/// and the index. The applier's own state is two leaf maps: the blocks a large file being
/// patched still lacks (`plans`) and the directories to flush (`synced_dirs`).
///
/// Locks, in the order they are taken: `states` (a round holds it throughout), then `index`
/// (held while applying or publishing, and to summarise). Both are async locks, held across
/// awaits; neither is ever taken while a later one in this order is held. Every other lock
/// (`plans`, `synced_dirs`, and the parts' own) is a leaf: held for a few statements, never
/// across an await, never while another lock is taken.
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
    pub(super) publisher: Publisher,
    pub(super) registry: Registry,
    /// Files as this device last wrote or published them, by path.
    pub(super) index: Mutex<Index>,
    /// The maximal versions of the paths in the document, those of settled paths left to
    /// it (see [`States`]).
    pub(super) states: Mutex<States>,
    /// The work waiting for the next round.
    pub(super) queue: Queue,
    /// The peers met (content is fetched from them) and which are connected.
    pub(super) swarm: Swarm,
    /// What the folder tells people: counts, recent changes, what is not synced.
    pub(super) report: Report,
    /// The blocks each large file being patched still lacks, by file, for the version (hash)
    /// being written: a retry fetches them before reading the file again.
    pub(super) plans: std::sync::Mutex<std::collections::HashMap<PathBuf, (Hash, Vec<u64>)>>,
    pub(super) trash: Trash,
    /// The content peers may fetch from this device.
    pub(super) content: Content,
    /// Directories files were renamed into since their entries were last flushed to disk.
    pub(super) synced_dirs: std::sync::Mutex<BTreeSet<PathBuf>>,
    /// How long and how much the trash keeps: (max age in ms, max bytes).
    pub(super) trash_keep: (u64, u64),
    /// Which names the folder's file system holds apart, and which it cannot hold.
    pub(super) names: super::names::NameRules,
    /// When to reconcile the document with the peers again.
    pub(super) reconcile: Resync,
    /// Told when a full pass lets go of content the store may then collect.
    pub(super) collection: crate::collect::Collection,
}

impl std::fmt::Debug for FolderSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderSync")
            .field("root", &self.root)
            .finish()
    }
}

impl FolderSync {
    /// Wraps an open document for the folder at `root`, into which this device writes
    /// through `writer`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        doc: Doc,
        root: PathBuf,
        read_only: bool,
        writer: crate::documents::Writer,
        device: EndpointId,
        settings: &crate::settings::Settings,
        store: Store,
        endpoint: iroh::Endpoint,
        registry: Registry,
        pace: Arc<crate::limits::Limiter>,
        collection: crate::collect::Collection,
    ) -> Arc<FolderSync> {
        // Loaded before anything runs: it tells files this device wrote from files changed
        // while it was not running.
        let folder_id = doc.id().to_string();
        let names = super::names::NameRules::detect(&root);
        let index = Index::load(&root, &folder_id, names.exec);
        // The files this folder holds are its own content: servable to its members.
        for known in index.values() {
            if let Some(h) = known.hash.get() {
                registry.allow_folder(&folder_id, h);
            }
        }
        let fetcher = Fetcher::new(
            store.clone(),
            endpoint,
            root.join(super::ignore::STATE_DIR).join("incoming"),
            pace,
        );
        Arc::new(FolderSync {
            fetcher,
            publisher: Publisher::new(device.to_string(), settings.device_name.clone()),
            content: Content::new(&root, store.clone(), registry.clone(), &folder_id),
            records: Records::new(
                doc,
                writer,
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
            states: Mutex::new(States::default()),
            queue: Queue::starting(),
            report: Report::starting(),
            swarm: Swarm::new(device),
            plans: std::sync::Mutex::new(Default::default()),
            synced_dirs: std::sync::Mutex::new(BTreeSet::new()),
            reconcile: Resync::new(std::time::Instant::now()),
            collection,
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
        self.report
            .activity(self.swarm.list(), self.fetcher.fetched())
    }

    /// Records how far the current full pass is.
    pub(super) fn scan_progress(&self, done: u64, total: u64) {
        self.report.scan_progress(done, total);
    }

    /// Notes, for people, that `by` changed `path` here.
    pub(super) fn note(&self, path: &str, kind: ChangeKind, by: &FileVersion) {
        let by = if *by.device == *self.device {
            String::new()
        } else {
            self.report.named(&by.device, &by.device_name);
            by.device_name.to_string()
        };
        self.report.note(Change {
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

    /// The versions of the paths `keys` names, after fetching records that had not
    /// arrived. Also returns the paths whose records are still missing (the caller retries).
    pub(super) async fn gather(
        &self,
        keys: Keys,
    ) -> Result<(BTreeMap<String, PathState>, BTreeSet<String>)> {
        let (mut states, missing) = self.records.read(&keys, &Default::default()).await?;
        if missing.is_empty() {
            return Ok((states, BTreeSet::new()));
        }
        let wants: Vec<(Hash, u64)> = missing
            .iter()
            .map(|(_, h)| (*h, MAX_RECORD_SIZE as u64))
            .collect();
        self.fetch(&wants).await;
        // Only the paths that had a record missing are read again (not the whole document
        // of a full pass because a few records were late).
        let fetched = missing.iter().map(|(_, h)| *h).collect();
        let again: BTreeSet<String> = missing.into_iter().map(|(rel, _)| rel).collect();
        let (found, missing) = self
            .records
            .read(&Records::of_paths(again.iter().cloned()), &fetched)
            .await?;
        for rel in again {
            states.remove(&rel);
        }
        states.extend(found);
        Ok((states, missing.into_iter().map(|(rel, _)| rel).collect()))
    }

    /// Reads from the document the versions of `rels` (paths waiting for records, or whose
    /// versions were left to it: see [`States`]), fetching records that had not arrived.
    /// Returns those whose records are still missing (all of them if the document could not
    /// be read): they are left unread, not taken for paths with fewer versions or none, and
    /// are not acted on until they can be read.
    pub(super) async fn read_paths(
        &self,
        states: &mut States,
        rels: Vec<String>,
    ) -> BTreeSet<String> {
        if rels.is_empty() {
            return BTreeSet::new();
        }
        match self.gather(Records::of_paths(rels.iter().cloned())).await {
            Ok((mut found, missing)) => {
                for rel in rels {
                    match found.remove(&rel) {
                        _ if missing.contains(&rel) => states.set_unread(rel),
                        Some(state) => states.insert(rel, state),
                        // Every record of it refused or gone: the document names no version.
                        None => states.remove(&rel),
                    }
                }
                missing
            }
            Err(e) => {
                tracing::warn!("reading paths of {}: {e}", self.root.display());
                rels.into_iter().collect()
            }
        }
    }

    /// Adds work for the next round and wakes the loop.
    pub(super) fn mark(&self, f: impl FnOnce(&mut Dirty)) {
        self.queue.mark(f);
    }

    /// Reconciles the document with `peers` again (which and when: see
    /// [`resync`](super::resync)).
    async fn resync(&self, peers: Vec<EndpointId>) {
        let peers: Vec<iroh::EndpointAddr> =
            peers.into_iter().map(iroh::EndpointAddr::new).collect();
        if peers.is_empty() {
            return;
        }
        if let Err(e) = self.records.doc().start_sync(peers).await {
            tracing::debug!("resyncing {}: {e}", self.root.display());
        }
    }

    /// Runs the folder until `stop` fires: watches the disk and the document.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        if let Err(e) = self.content.allow_kept().await {
            tracing::warn!("{}: reading what the folder kept: {e}", self.root.display());
        }
        let me = self.clone();
        let root = self.root.clone();
        // A watcher that reported an error (a new directory past the system's inotify limit,
        // say) may be missing changes from then on: full passes come as often as without one.
        let watch_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failed = watch_failed.clone();
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
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    me.mark(|d| d.full = true);
                }
            })
            .ok();
        if let Some(w) = watcher.as_mut() {
            use notify::Watcher;
            if let Err(e) = w.watch(&self.root, notify::RecursiveMode::Recursive) {
                tracing::warn!("cannot watch {}: {e}", self.root.display());
                watch_failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        } else {
            watch_failed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let watching = || !watch_failed.load(std::sync::atomic::Ordering::Relaxed);
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
            loop {
                while let Some(ev) = events.next().await {
                    let ev = match ev {
                        Ok(ev) => ev,
                        // An event that could not be read (the store did not answer for its
                        // content, say) may have named a new entry: a full pass reads them all.
                        Err(e) => {
                            tracing::warn!("{}: a document event: {e}", me.root.display());
                            me.mark(|d| d.full = true);
                            continue;
                        }
                    };
                    match &ev {
                        LiveEvent::InsertRemote { from, entry, .. } => {
                            me.reconcile.stir();
                            me.add_peer(*from);
                            if let Some(rel) = key_path(entry.key()) {
                                if entry.content_len() <= MAX_RECORD_SIZE as u64 {
                                    let hash = entry.content_hash();
                                    me.mark(|d| d.records.push((rel, hash)));
                                }
                            }
                        }
                        // This device's own records are in the cache already (see `publish`);
                        // peers whose gossip dropped them get them from the next reconciliation.
                        LiveEvent::InsertLocal { .. } => me.reconcile.stir(),
                        LiveEvent::NeighborUp(peer) => {
                            me.add_peer(*peer);
                            me.swarm.set_connected(*peer, true);
                            me.reconcile.stir();
                            me.queue.retry_soon();
                        }
                        LiveEvent::SyncFinished(sync) => {
                            me.add_peer(sync.peer);
                            if sync.result.is_ok() {
                                me.swarm.set_synced(
                                    sync.peer,
                                    std::time::Instant::now(),
                                    sync.started,
                                );
                            }
                        }
                        LiveEvent::NeighborDown(peer) => {
                            me.swarm.set_connected(*peer, false);
                        }
                        LiveEvent::ContentReady { .. } | LiveEvent::PendingContentReady => {
                            me.queue.retry_wanted()
                        }
                    }
                }
                // The events stopped while the folder runs (the folder is stopped, and this task
                // with it, before its document closes): a full pass finds what was missed, and
                // the events are followed again.
                tracing::warn!(
                    "{}: the folder document's events stopped",
                    me.root.display()
                );
                me.mark(|d| d.full = true);
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match me.records.doc().subscribe().await {
                        Ok(s) => {
                            events = s;
                            break;
                        }
                        Err(e) => tracing::debug!("following the folder document again: {e}"),
                    }
                }
            }
        });
        // The start does a full pass; the next is due after it (see `rescan_after`).
        let mut next_full = tokio::time::Instant::now() + rescan_after(watching(), None);
        // The retry timer runs only while paths wait (an idle folder is not woken twice a
        // second for nothing), counted from when they began to.
        let mut retried = tokio::time::Instant::now();
        let mut waiting = false;
        // Saving is retried only after a snapshot could not be written; otherwise the index
        // is saved after the rounds that change it, when a snapshot is due.
        let mut unsaved = false;
        let mut save = tokio::time::interval(SAVE_EVERY);
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await; // joining or starting the folder has just synced
        loop {
            let now_waiting = self.queue.waiting();
            if now_waiting && !waiting {
                retried = tokio::time::Instant::now();
            }
            waiting = now_waiting;
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep_until(next_full) => {
                    self.mark(|d| d.full = true);
                    // Rescheduled when it has run.
                    next_full += rescan_after(watching(), None);
                }
                _ = tokio::time::sleep_until(retried + self.queue.retry_delay()), if waiting => {
                    retried = tokio::time::Instant::now();
                    self.queue.retry_wanted();
                }
                _ = save.tick(), if unsaved => {
                    unsaved = !self.save_index(false).await;
                    continue;
                }
                _ = resync.tick() => {
                    let now = std::time::Instant::now();
                    let unreached = self.swarm.unreached(now, RESYNC_QUIET);
                    let peers = match self.reconcile.due(now) {
                        Due::All => self.swarm.known(),
                        Due::ChangedAt(at) => {
                            let mut peers = self.swarm.not_synced_since(at);
                            let more: Vec<_> =
                                unreached.into_iter().filter(|p| !peers.contains(p)).collect();
                            peers.extend(more);
                            peers
                        }
                        Due::Unreached => unreached,
                    };
                    self.resync(peers).await;
                    continue;
                }
                _ = self.queue.marked() => {
                    // Local changes: batch whatever else arrives within a short window (a file
                    // being written fires several events, a copy of many files many more).
                    // Records from peers are applied at once: they come whole, and those that
                    // arrive while a round runs make up the next one.
                    if self.queue.local_marked() {
                        tokio::time::sleep(BATCH_WINDOW).await;
                    }
                }
            }
            if let Some(took) = self.round().await {
                next_full = tokio::time::Instant::now() + rescan_after(watching(), Some(took));
            }
            unsaved = !self.save_index(false).await;
        }
        follower.abort();
        self.save_index(true).await;
        // The watcher stops with the loop.
        drop(watcher);
    }
}

/// How many changed files a folder copies into the store and publishes at once.
pub(super) const PUBLISH_PARALLEL: usize = 16;

/// How many changed files a pass over the folder collects before publishing them.
pub(super) const PUBLISH_BATCH: usize = 1024;

/// How many questions to the store (is a blob here, read a record, write a file out of it) a
/// round asks at once: each is a message to the store's actor and an answer back, and one
/// after the other they kept both cores mostly idle.
pub(super) const STORE_PARALLEL: usize = 16;

/// How long the watcher's events are collected before a round runs.
pub(super) const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// How often saving the index is tried again after a snapshot could not be written (see
/// `Index::snapshot`).
pub(super) const SAVE_EVERY: Duration = Duration::from_secs(2);

/// How often every file and every record is looked at without a working watcher (a folder
/// past the system's inotify limit, say): full passes are then how local changes are found.
pub(super) const RESCAN_EVERY: Duration = Duration::from_secs(300);

/// How often with one: the watcher reports local changes and the document's events remote
/// ones, so a full pass is only the safety net — Syncthing's interval with a watcher.
const RESCAN_WATCHED: Duration = Duration::from_secs(3600);

/// Full passes are at least this many times as long as the last one took apart (a folder of
/// a million files is not read whole for more than a twentieth of the time).
const RESCAN_FACTOR: u32 = 20;

/// How long after a full pass (that took `took`, if known) the next one is due.
fn rescan_after(watching: bool, took: Option<Duration>) -> Duration {
    if !watching {
        return RESCAN_EVERY;
    }
    took.map_or(RESCAN_WATCHED, |took| {
        (took * RESCAN_FACTOR).max(RESCAN_WATCHED)
    })
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
