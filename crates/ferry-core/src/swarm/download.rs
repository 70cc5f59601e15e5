//! Fetching one blob from many peers: the [`Planner`] says which pieces to ask each peer for,
//! this module asks and reports what came.
//!
//! Each peer gets a task that follows its observe stream (what it has, then what it gains)
//! and two workers, each with one range request in flight, so that a peer's link never waits
//! for a round trip. A request asks for about a quarter second of the peer's measured rate
//! (at least one piece, at most [`MAX_BATCH`]). After each request the store's own bitfield
//! says which pieces arrived (verified as they were written); the others go back to the pool.
//!
//! A peer leaves the transfer when it serves data that fails verification (at once), when it
//! does not serve what it claimed or makes no progress for [`STALL`] ([`MAX_STRIKES`] times),
//! or when its connection ends. Peers may join at any time (`joins`). Whatever is in the store
//! when the download starts (a resume after a crash, from whichever peers) is not fetched
//! again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::{endpoint::Connection, EndpointId};
use iroh_blobs::{
    api::{remote::GetProgressItem, Store},
    get::{fsm::DecodeError, GetError},
    protocol::{ChunkRanges, ChunkRangesExt, GetRequest, ObserveRequest},
    Hash,
};
use n0_future::StreamExt;
use tokio::sync::{mpsc, Notify};

use super::pieces::{piece_count, pieces_in, pieces_touched, ranges_of, Planner, PIECE_BYTES};
use crate::{
    error::{Error, Result},
    limits::Limiter,
};

/// Largest request, in pieces (8 MiB).
pub const MAX_BATCH: usize = 32;

/// A request that brings nothing for this long is given up; its pieces go to other peers.
pub const STALL: Duration = Duration::from_secs(8);

/// Strikes (claimed pieces not served, stalls) after which a peer leaves the transfer.
pub const MAX_STRIKES: u32 = 3;

/// How long a request should take at the peer's measured rate. Short, because pieces asked
/// of one peer are invisible to the other receivers, who may ask the sender for the same ones:
/// the less is in flight, the fewer pieces the sender sends twice. Two requests in flight per
/// peer keep its link busy across round trips.
const BATCH_SECS: f64 = 0.25;

/// How often the store is asked to commit what arrived.
const SYNC_EVERY: Duration = Duration::from_millis(500);

/// Requests in flight per peer.
const WORKERS_PER_PEER: usize = 2;

/// How long a download waits with no peer at all, or with peers none of which brings a new
/// piece, before giving up.
const NO_PEER_LIMIT: Duration = Duration::from_secs(30);
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(60);

/// A peer to fetch from.
#[derive(Debug, Clone)]
pub struct Source {
    /// Who it is.
    pub id: EndpointId,
    /// A connection to it speaking the blobs protocol.
    pub conn: Connection,
    /// It has the whole blob (the share's sender): asked before its claims arrive, and even
    /// if it does not answer observe requests (sendme and older providers may not).
    pub seed: bool,
}

/// Why a peer left a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// It served data that does not match the blob's hash.
    Corrupt,
    /// It did not serve what it claimed to have, or stalled, too often.
    Unreliable,
    /// Its connection ended.
    Gone,
}

/// What one peer contributed.
#[derive(Debug, Clone, Default)]
pub struct PeerReport {
    /// Verified bytes it delivered (pieces that were new here).
    pub bytes: u64,
    /// Why it left before the end, if it did.
    pub left: Option<Left>,
}

/// Progress of a swarm download, sent once what arrived is committed (at most twice a second).
#[derive(Debug, Clone)]
pub struct Progress {
    /// Verified bytes here.
    pub done: u64,
    /// Verified bytes that were here when the download started (a resume).
    pub start: u64,
    /// The blob's size.
    pub total: u64,
    /// Per peer in the transfer: bytes delivered and the current rate (bytes per second).
    pub peers: Vec<(EndpointId, u64, u64)>,
}

/// What a finished download did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per peer that took part.
    pub peers: HashMap<EndpointId, PeerReport>,
}

/// The download's shared state.
struct Shared {
    store: Store,
    hash: Hash,
    size: u64,
    planner: Mutex<Planner<EndpointId>>,
    /// Woken when the plan changes: a claim, a piece back in the pool, the end.
    changed: Notify,
    peers: Mutex<HashMap<EndpointId, PeerState>>,
    /// Where progress goes; taken (closed) when the download ends.
    progress: Mutex<Option<mpsc::UnboundedSender<Progress>>>,
    /// A failure that ends the whole download (this device's disk, say).
    fatal: Mutex<Option<Error>>,
    /// When bytes last arrived from any peer (a slow peer may take long for one piece).
    active: Mutex<Instant>,
    /// The node's download limits.
    pace: Arc<Limiter>,
    /// Verified bytes here when the download started.
    start: u64,
}

#[derive(Default)]
struct PeerState {
    report: PeerReport,
    strikes: u32,
    /// Bytes per second, smoothed.
    rate: f64,
}

/// Fetches `hash` (`size` bytes, a size already proven) into `store` from `sources` and from
/// every peer sent on `joins` later. Returns once the store holds the whole blob.
pub async fn download(
    store: Store,
    hash: Hash,
    size: u64,
    sources: Vec<Source>,
    mut joins: mpsc::UnboundedReceiver<Source>,
    progress: Option<mpsc::UnboundedSender<Progress>>,
    pace: Arc<Limiter>,
) -> Result<Report> {
    let have = local_pieces(&store, hash, size).await?;
    // The store closes a partial blob whenever no command on it is running (between two
    // requests, say), and closing it syncs its files to disk: a 1 GiB download fetched in
    // 8 MiB requests waited for ~130 syncs of everything written so far. An observer held
    // (and never read: it blocks, holding nothing but the blob open) keeps it open until the
    // download ends. A crash loses nothing by it: the store rebuilds a partial blob's
    // bitfield from the data, verified, when the bitfield was not written.
    let _open = store.observe(hash).stream().await.map_err(Error::store)?;
    let seed = rand::random::<u64>();
    let shared = Arc::new(Shared {
        planner: Mutex::new(Planner::new(piece_count(size), &have, seed)),
        store,
        hash,
        size,
        changed: Notify::new(),
        peers: Mutex::new(HashMap::new()),
        progress: Mutex::new(progress),
        fatal: Mutex::new(None),
        active: Mutex::new(Instant::now()),
        pace,
        start: (have.len() as u64 * PIECE_BYTES).min(size),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut joined = std::collections::HashSet::new();
    let mut start = |source: Source, tasks: &mut tokio::task::JoinSet<()>| {
        // One task per peer; a peer met twice keeps its first connection.
        if joined.insert(source.id) {
            tasks.spawn(run_peer(shared.clone(), source));
        }
    };
    for s in sources {
        start(s, &mut tasks);
    }
    let mut alone_since = None;
    let mut joins_open = true;
    let mut last = (0, Instant::now());
    // What arrived is committed, then reported: progress never counts what a receiver killed a
    // moment later (SIGKILL, power loss) would not find again. The store commits a partial
    // blob's entry only when asked to (or a second after its first write): the first piece is
    // committed at once, the rest at most twice a second.
    let mut reported = (
        shared.planner.lock().expect("planner").have_count(),
        None::<Instant>,
    );
    loop {
        let have = shared.planner.lock().expect("planner").have_count();
        let active = *shared.active.lock().expect("active");
        if have != last.0 || active > last.1 {
            last = (have, active.max(Instant::now()));
        } else if last.1.elapsed() > NO_PROGRESS_LIMIT {
            shared.progress.lock().expect("progress").take();
            return Err(Error::Transfer(
                "no peer sent any of the rest of this file for a minute; run again to resume"
                    .into(),
            ));
        }
        let due = reported.1.map(|at| at + SYNC_EVERY);
        if have != reported.0 && due.is_none_or(|due| due <= Instant::now()) {
            shared.store.sync_db().await.ok();
            reported = (have, Some(Instant::now()));
            send_progress(&shared, have);
        }
        if shared.planner.lock().expect("planner").done() {
            break;
        }
        if let Some(e) = shared.fatal.lock().expect("fatal").take() {
            tasks.abort_all();
            shared.progress.lock().expect("progress").take();
            return Err(e);
        }
        if tasks.is_empty() {
            let since = *alone_since.get_or_insert_with(Instant::now);
            if !joins_open || since.elapsed() > NO_PEER_LIMIT {
                shared.progress.lock().expect("progress").take();
                return Err(Error::Transfer(
                    "no peer has the rest of this file; run again to resume".into(),
                ));
            }
        } else {
            alone_since = None;
        }
        // A piece may have arrived while the store committed.
        let unreported = shared.planner.lock().expect("planner").have_count() != reported.0;
        tokio::select! {
            join = joins.recv(), if joins_open => match join {
                Some(s) => start(s, &mut tasks),
                None => joins_open = false,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = shared.changed.notified() => {}
            _ = tokio::time::sleep(match reported.1 {
                // Something arrived that is not reported yet.
                Some(at) if unreported => (at + SYNC_EVERY).saturating_duration_since(Instant::now()),
                _ => Duration::from_secs(1),
            }) => {}
        }
    }
    // Everything is here: the other requests (endgame duplicates) are of no use.
    tasks.abort_all();
    shared.store.sync_db().await.ok();
    let have = shared.planner.lock().expect("planner").have_count();
    send_progress(&shared, have);
    shared.progress.lock().expect("progress").take();
    let report = Report {
        peers: shared
            .peers
            .lock()
            .expect("peers")
            .iter()
            .map(|(id, p)| (*id, p.report.clone()))
            .collect(),
    };
    Ok(report)
}

/// The pieces `store` holds of `hash` already.
async fn local_pieces(store: &Store, hash: Hash, size: u64) -> Result<Vec<usize>> {
    let bitfield = store.observe(hash).await.map_err(Error::store)?;
    Ok(pieces_in(&bitfield.ranges, size))
}

/// One peer's part: follows its claims, runs its workers, leaves when it must.
async fn run_peer(shared: Arc<Shared>, source: Source) {
    shared
        .peers
        .lock()
        .expect("peers")
        .entry(source.id)
        .or_default();
    if source.seed {
        let all = piece_count(shared.size);
        shared
            .planner
            .lock()
            .expect("planner")
            .peer_has(source.id, 0..all);
    }
    // Aborted with this task, whenever it ends (a handle dropped does not stop a task).
    let observer = AbortOnDrop(tokio::spawn(observe(shared.clone(), source.clone())));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS_PER_PEER {
        workers.spawn(work(shared.clone(), source.clone()));
    }
    let mut left = None;
    while let Some(res) = workers.join_next().await {
        if let Ok(Some(why)) = res {
            left = Some(why);
            workers.abort_all();
        }
    }
    drop(observer);
    if let Some(why) = left {
        tracing::debug!("peer {} left the swarm: {why:?}", source.id.fmt_short());
        shared.planner.lock().expect("planner").drop_peer(source.id);
        if let Some(p) = shared.peers.lock().expect("peers").get_mut(&source.id) {
            p.report.left = Some(why);
        }
        shared.changed.notify_waiters();
    }
}

/// Follows the peer's observe stream: its bitfield, then updates.
async fn observe(shared: Arc<Shared>, source: Source) {
    let mut claims = ChunkRanges::empty();
    let stream = shared
        .store
        .remote()
        .observe(source.conn.clone(), ObserveRequest::new(shared.hash));
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let Ok(update) = item else {
            break;
        };
        // The first item is the whole bitfield, the others what changed. Claims beyond the
        // blob mean nothing; a claim cut in more runs than the blob has pieces is a peer
        // trying to make this node hold a huge set: it leaves.
        claims = &claims ^ &update.ranges;
        claims &= ChunkRanges::chunks(0..shared.size.div_ceil(1024).max(1));
        if claims.boundaries().len() > 2 * piece_count(shared.size) + 2 {
            tracing::debug!("peer {} claims nonsense; dropped", source.id.fmt_short());
            shared.planner.lock().expect("planner").drop_peer(source.id);
            if let Some(p) = shared.peers.lock().expect("peers").get_mut(&source.id) {
                p.report.left = Some(Left::Unreliable);
            }
            break;
        }
        let pieces = pieces_in(&claims, shared.size);
        let started = pieces_touched(&claims, shared.size);
        let mut planner = shared.planner.lock().expect("planner");
        planner.peer_has(source.id, pieces);
        planner.peer_started(source.id, started);
        drop(planner);
        shared.changed.notify_waiters();
    }
}

/// One request at a time to the peer, until the blob is whole. `Some` if the peer must leave.
async fn work(shared: Arc<Shared>, source: Source) -> Option<Left> {
    loop {
        let batch = {
            let rate = shared
                .peers
                .lock()
                .expect("peers")
                .get(&source.id)
                .map_or(0.0, |p| p.rate);
            ((rate * BATCH_SECS / PIECE_BYTES as f64) as usize).clamp(1, MAX_BATCH)
        };
        let picked = {
            let mut planner = shared.planner.lock().expect("planner");
            if planner.done() {
                return None;
            }
            planner.pick(source.id, batch)
        };
        if picked.is_empty() {
            // Nothing to ask this peer for now: wait for a claim or a piece back in the pool.
            let changed = shared.changed.notified();
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = source.conn.closed() => return Some(Left::Gone),
            }
            continue;
        }
        let started = Instant::now();
        tracing::trace!(
            "asking {} for {} pieces",
            source.id.fmt_short(),
            picked.len()
        );
        let outcome = request(&shared, &source, &picked).await;
        // What arrived is in the store's bitfield, verified.
        let here = match local_pieces(&shared.store, shared.hash, shared.size).await {
            Ok(p) => p,
            Err(e) => {
                *shared.fatal.lock().expect("fatal") = Some(e);
                shared.changed.notify_waiters();
                return None;
            }
        };
        let mut new_bytes = 0;
        let mut missed = 0;
        {
            let mut planner = shared.planner.lock().expect("planner");
            for &i in &picked {
                if here.binary_search(&i).is_ok() {
                    if planner.arrived(source.id, i) {
                        let r = super::pieces::piece_range(i, shared.size);
                        new_bytes += r.end - r.start;
                    }
                } else {
                    planner.missed(source.id, i);
                    missed += 1;
                }
            }
        }
        tracing::trace!(
            "{} brought {} of {} pieces ({new_bytes} new bytes)",
            source.id.fmt_short(),
            picked.len() - missed,
            picked.len()
        );
        let strike = {
            let mut peers = shared.peers.lock().expect("peers");
            let p = peers.entry(source.id).or_default();
            p.report.bytes += new_bytes;
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let sample = (picked.len() - missed) as f64 * PIECE_BYTES as f64 / secs;
            p.rate = if p.rate == 0.0 {
                sample
            } else {
                0.7 * p.rate + 0.3 * sample
            };
            let strike = missed > 0 && !matches!(outcome, Outcome::Gone);
            if strike {
                p.strikes += 1;
            }
            strike.then_some(p.strikes)
        };
        shared.changed.notify_waiters();
        match outcome {
            Outcome::Corrupt => return Some(Left::Corrupt),
            Outcome::Gone => return Some(Left::Gone),
            Outcome::Fatal(e) => {
                *shared.fatal.lock().expect("fatal") = Some(e);
                return None;
            }
            Outcome::Done | Outcome::Short => {}
        }
        // The share's sender is never struck out: a busy sender (its upload limit, many
        // receivers) is slow, not lying, and the others may not have everything.
        if strike.is_some_and(|n| n >= MAX_STRIKES) && !source.seed {
            return Some(Left::Unreliable);
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How one request ended.
enum Outcome {
    /// Everything asked for came.
    Done,
    /// The peer stopped early or stalled: it did not have (or would not send) the rest.
    Short,
    /// The peer sent data that failed verification.
    Corrupt,
    /// The connection is gone.
    Gone,
    /// This device cannot store what arrives.
    Fatal(Error),
}

/// Asks the peer for `pieces`, giving up after [`STALL`] without progress.
async fn request(shared: &Shared, source: &Source, pieces: &[usize]) -> Outcome {
    // Only what is not here yet: a resume after a crash may hold parts of these pieces.
    let mut ranges = ranges_of(pieces, shared.size);
    // (The empty blob's one piece is its last chunk, here once its size is.)
    if let Ok(here) = shared.store.observe(shared.hash).await {
        ranges = &ranges - &here.ranges;
        if ranges.is_empty() {
            return Outcome::Done;
        }
    }
    let get = GetRequest::blob_ranges(shared.hash, ranges);
    let mut stream = shared
        .store
        .remote()
        .execute_get(source.conn.clone(), get)
        .stream();
    let mut read = 0;
    loop {
        let item = match tokio::time::timeout(STALL, stream.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => return Outcome::Short,
            Err(_) => return Outcome::Short,
        };
        match item {
            GetProgressItem::Progress(offset) => {
                *shared.active.lock().expect("active") = Instant::now();
                // The request goes on only as fast as this reads: waiting holds the sender.
                let n = offset.saturating_sub(read);
                read = read.max(offset);
                shared.pace.pace(Some(&source.id), n).await;
            }
            GetProgressItem::Done(_) => return Outcome::Done,
            GetProgressItem::Error(e) => return classify(e, &source.conn),
        }
    }
}

/// What a failed request says about the peer.
fn classify(e: GetError, conn: &Connection) -> Outcome {
    if let Some(io) = e.local_write() {
        return Outcome::Fatal(if crate::error::is_disk_full(io) {
            Error::DiskFull {
                path: std::path::PathBuf::from("the data directory"),
                needed: 0,
                available: 0,
            }
        } else {
            Error::Store(e.to_string())
        });
    }
    if let GetError::Decode { source, .. } = &e {
        if matches!(
            source,
            DecodeError::ParentHashMismatch { .. } | DecodeError::LeafHashMismatch { .. }
        ) {
            return Outcome::Corrupt;
        }
    }
    // Refused: the peer no longer shares this (or never let this node in). Nothing more will
    // come from it in this transfer.
    if conn.close_reason().is_some()
        || e.iroh_error_code() == Some(iroh_blobs::protocol::ERR_PERMISSION)
    {
        return Outcome::Gone;
    }
    tracing::debug!("swarm request failed: {e}");
    Outcome::Short
}

/// Reports `have` pieces (committed) and each peer's part.
fn send_progress(shared: &Shared, have: usize) {
    let Some(tx) = shared.progress.lock().expect("progress").clone() else {
        return;
    };
    let done = (have as u64 * PIECE_BYTES).min(shared.size);
    let peers = shared
        .peers
        .lock()
        .expect("peers")
        .iter()
        .filter(|(_, p)| p.report.left.is_none())
        .map(|(id, p)| (*id, p.report.bytes, p.rate as u64))
        .collect();
    tx.send(Progress {
        done,
        start: shared.start,
        total: shared.size,
        peers,
    })
    .ok();
}
