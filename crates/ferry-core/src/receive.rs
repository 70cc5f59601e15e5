//! Receiving a one-shot share: preview, download with resume, verified export.
//!
//! 1. **Offer.** One request stores the collection's hash sequence and its metadata blob (the
//!    names). Every name is checked ([`crate::names`]); one bad name aborts before anything is
//!    written. A second request reads the last chunk of every file, which proves its size.
//! 2. **Download.** Everything goes into a blob store of its own for this transfer
//!    (`<home>/transfers/<collection hash>`). Whatever an earlier, interrupted attempt stored
//!    there is kept: only the missing ranges are requested ([`LocalInfo::missing`]). Each chunk
//!    is BLAKE3-verified as it arrives.
//! 3. **Export.** Verified files are moved out of that store into a staging directory inside the
//!    destination (renamed, not copied, when both are on one filesystem) and moved into place
//!    without overwriting anything ([`crate::export`]). The transfer's store is then removed.
//!    An export cut short (cancel, full disk, crash) resumes: the staging directory is kept
//!    (it may hold the only copy of a file already moved out of the store) and its files are
//!    kept if they hash right; the entries already moved into place are noted in the
//!    transfer's directory (`moved.json`) and not moved or saved again.
//!    A store of its own is what makes moving safe: the files leave a store nothing else uses,
//!    so no other share, folder or transfer can be left pointing at a moved file.
//!
//! [`LocalInfo::missing`]: iroh_blobs::api::remote::LocalInfo::missing

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use iroh::endpoint::Connection;
use iroh_blobs::{
    api::{
        blobs::{BlobStatus, ExportMode, ExportOptions},
        remote::GetProgressItem,
        Store,
    },
    format::collection::Collection,
    protocol::{ChunkRanges, ChunkRangesSeq, GetRequest},
    Hash, HashAndFormat,
};
use n0_future::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    export,
    kept::Received,
    names,
    node::Node,
    progress::{
        Offer, OfferEntry, PeerRate, RateMeter, ReceiveEvent, ReceiveSummary, Throttle,
        TransferProgress, Via,
    },
    swarm::session::{Parts, ShareSwarm},
    ticket::Ticket,
    transfer_store::{self, TransferStore},
};

/// How long to wait for the sender to answer before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Files this large are fetched piece by piece from every receiver of the share at once;
/// smaller ones come whole from the sender (a swarm's round trips cost more than they save).
pub const SWARM_MIN: u64 = 4 * 1024 * 1024;
/// Largest accepted collection metadata (names), to bound memory against hostile senders.
pub const MAX_META_SIZE: u64 = 64 * 1024 * 1024;

/// What the store holds of an offer: everything needed, or the names without every size.
enum Loaded {
    /// Names checked and every size known.
    Ready(Checked),
    /// Names checked; the size of this file is not known yet.
    NeedSizes(String),
}

impl Loaded {
    /// The checked offer; an unknown size is the sender's fault at this point.
    fn ready(self) -> Result<Checked> {
        match self {
            Loaded::Ready(c) => Ok(c),
            Loaded::NeedSizes(name) => Err(Error::BadData(format!(
                "the sender did not prove the size of {name:?}"
            ))),
        }
    }
}

/// A fetched, checked offer with what is needed to download it.
#[derive(Debug)]
struct Checked {
    offer: Offer,
    /// Bytes of the hash seq and the metadata blob (not payload).
    overhead: u64,
    /// (validated relative path, hash, size, complete locally)
    files: Vec<(PathBuf, Hash, u64, bool)>,
}

/// The tag under which receives before per-transfer stores kept their data in the home's
/// store; dropped when such a transfer is received again or discarded.
fn tag_name(hash: &Hash) -> String {
    format!("ferry/recv/{}", hash.to_hex())
}

impl Node {
    /// Connects to the sender of a ticket.
    pub async fn connect(&self, ticket: &Ticket) -> Result<Connection> {
        let addr = ticket.blob_ticket().addr().clone();
        let id = addr.id;
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.endpoint().connect(addr, iroh_blobs::ALPN),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(Error::Connect(format!("{}: {e}", id.fmt_short()))),
            Err(_) => Err(Error::Connect(format!(
                "{} did not answer within {}s; is it still sharing?",
                id.fmt_short(),
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Fetches what a ticket offers (names and sizes), without downloading the files.
    pub async fn preview(&self, ticket: &Ticket) -> Result<Offer> {
        let conn = self.connect(ticket).await?;
        let checked = self
            .fetch_offer(self.store(), &conn, ticket.blob_ticket().hash())
            .await?;
        conn.close(0u32.into(), b"done");
        Ok(checked.offer)
    }

    /// Downloads everything a ticket offers into `dest`. Progress goes to `events`; `cancel`
    /// stops the transfer, keeping what was fetched for a later attempt. The files received
    /// are then served to the share's other receivers if the node does that (see
    /// [`Node::set_keep_serving`]).
    pub async fn receive(
        &self,
        ticket: &Ticket,
        dest: &Path,
        events: mpsc::UnboundedSender<ReceiveEvent>,
        cancel: CancellationToken,
    ) -> Result<ReceiveSummary> {
        self.receive_with(ticket, dest, None, events, cancel).await
    }

    /// [`Node::receive`], serving the files received to the share's other receivers while
    /// its sender shares it if `keep_serving` says so (`None`: as the node does).
    pub async fn receive_with(
        &self,
        ticket: &Ticket,
        dest: &Path,
        keep_serving: Option<bool>,
        events: mpsc::UnboundedSender<ReceiveEvent>,
        cancel: CancellationToken,
    ) -> Result<ReceiveSummary> {
        let hash = ticket.blob_ticket().hash();
        // Files are later found again by these paths (see `crate::kept`).
        let dest = &std::path::absolute(dest).map_err(|e| Error::write(dest, e))?;
        let keep = keep_serving.unwrap_or_else(|| {
            self.inner
                .keep_serving
                .load(std::sync::atomic::Ordering::Relaxed)
        });
        export::check_destination(dest)?;
        let transfer = TransferStore::open(self.home(), &hash).await?;
        let res = tokio::select! {
            res = self.receive_into(transfer.store(), ticket, dest, keep, &events) => res,
            _ = cancel.cancelled() => Err(Error::Cancelled),
        };
        let (res, received) = match res {
            Ok((summary, received)) => (Ok(summary), received),
            Err(e) => (Err(e), None),
        };
        // Kept after a cancel or a failure the next attempt can resume from; removed once the
        // files are in place, or when the offer itself was refused.
        transfer
            .close(matches!(res, Ok(_) | Err(Error::BadData(_))))
            .await;
        // Serving on is set up before `Done`: whoever waits for it after `Done` sees it.
        if let Some(received) = received {
            self.keep_serving(received, keep_serving);
        }
        if let Ok(summary) = &res {
            self.store().tags().delete(tag_name(&hash)).await.ok();
            events.send(ReceiveEvent::Done(summary.clone())).ok();
        }
        res
    }

    async fn receive_into(
        &self,
        store: &Store,
        ticket: &Ticket,
        dest: &Path,
        keep_serving: bool,
        events: &mpsc::UnboundedSender<ReceiveEvent>,
    ) -> Result<(ReceiveSummary, Option<Received>)> {
        let t0 = Instant::now();
        let hash = ticket.blob_ticket().hash();
        let (checked, fetched) = self.fetch_all(store, ticket, Some(dest), events).await?;
        let total = checked.offer.total_size;

        // Moving files out of the transfer's store is a rename on one filesystem; elsewhere
        // they are copied (a move across volumes is not guaranteed to fall back on every OS).
        let transfer_dir = transfer_store::transfer_dir(self.home(), &hash);
        let mode = if same_filesystem(&transfer_dir, dest) == Some(true) {
            ExportMode::TryReference
        } else {
            ExportMode::Copy
        };
        let moved = transfer_dir.join("moved.json");
        let saved = export_all(store, mode, &checked, dest, &moved, events).await?;
        let received = if keep_serving {
            match received_share(store, ticket, &checked, &saved).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::info!("not serving what was received: {e}");
                    None
                }
            }
        } else {
            None
        };
        let summary = ReceiveSummary {
            saved,
            files: checked.files.len(),
            total_size: total,
            bytes_fetched: fetched,
            elapsed_secs: t0.elapsed().as_secs_f64(),
        };
        Ok((summary, received))
    }

    /// Fetches everything `ticket` offers into `store`: the names (checked), the sizes
    /// (proven), then every file (verified), large ones from the share's swarm. Free space is
    /// checked for the store and for `dest`, where the files go next (if they do). Returns the
    /// offer and the payload bytes fetched.
    async fn fetch_all(
        &self,
        store: &Store,
        ticket: &Ticket,
        dest: Option<&Path>,
        events: &mpsc::UnboundedSender<ReceiveEvent>,
    ) -> Result<(Checked, u64)> {
        let hash = ticket.blob_ticket().hash();
        let content = HashAndFormat::hash_seq(hash);

        let mut local = store.remote().local(content).await.map_err(Error::store)?;
        // An earlier attempt left data if the list of files is already here.
        let resumed = local.local_bytes() > 0;
        let mut conn = None;
        let checked = if local.is_complete() {
            load_offer(store, hash, None).await?.ready()?
        } else {
            events.send(ReceiveEvent::Connecting).ok();
            let c = self.connect(ticket).await?;
            let checked = self.fetch_offer(store, &c, hash).await?;
            conn = Some(c);
            local = store.remote().local(content).await.map_err(Error::store)?;
            checked
        };
        let total = checked.offer.total_size;
        let already = local_payload(&local, &checked);
        events
            .send(ReceiveEvent::Offer {
                offer: checked.offer.clone(),
                local_bytes: already.min(total),
                resumed,
            })
            .ok();
        let missing = total.saturating_sub(already);
        match dest {
            Some(dest) => check_space(self.home(), dest, total, missing)?,
            None => check_space_here(self.home(), missing)?,
        }

        let mut fetched = 0;
        if !local.is_complete() {
            let conn = conn.take().expect("connected when incomplete");
            // Large files come piece by piece from every receiver of the share at once; the
            // rest (small files, and whatever the swarm left) from the sender.
            let (swarm, swarmed) = self
                .swarm_large_files(store, ticket, &conn, &checked, already, events)
                .await?;
            let local = store.remote().local(content).await.map_err(Error::store)?;
            let already = local_payload(&local, &checked);
            tracing::debug!("swarm fetched {swarmed} bytes; the rest from the sender");
            fetched = swarmed;
            if !local.is_complete() {
                let pace = &self.inner.download;
                fetched +=
                    download(store, conn.clone(), &local, &checked, already, events, pace).await?;
            } else if let Some(swarm) = &swarm {
                // Everything came from the swarm: no download of the collection told the sender.
                swarm.report_done(checked.offer.total_size).await;
            }
            // The files may leave the store next: nothing more to serve from it.
            drop(swarm);
            conn.close(0u32.into(), b"done");
            let after = store.remote().local(content).await.map_err(Error::store)?;
            if !after.is_complete() {
                return Err(Error::Transfer(
                    "the sender stopped before everything was sent; run again to resume".into(),
                ));
            }
        }
        Ok((checked, fetched))
    }

    /// Fetches everything `ticket` offers into `store` without writing any file (see
    /// [`crate::seed`]). Returns each file's path in the offer and its size.
    pub(crate) async fn fetch_whole(
        &self,
        store: &Store,
        ticket: &Ticket,
        events: &mpsc::UnboundedSender<ReceiveEvent>,
    ) -> Result<Vec<(PathBuf, u64)>> {
        let (checked, _) = self.fetch_all(store, ticket, None, events).await?;
        Ok(checked.files.into_iter().map(|f| (f.0, f.2)).collect())
    }

    /// Fetches the large files of an offer that are not here yet from the share's swarm: the
    /// sender and every other receiver found (see [`crate::swarm`]). Returns this node's part
    /// in the swarm (kept while the receive goes on) and the bytes fetched.
    async fn swarm_large_files(
        &self,
        store: &Store,
        ticket: &Ticket,
        conn: &Connection,
        checked: &Checked,
        already: u64,
        events: &mpsc::UnboundedSender<ReceiveEvent>,
    ) -> Result<(Option<ShareSwarm>, u64)> {
        let large: Vec<(usize, Hash, u64)> = checked
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.3 && f.2 >= SWARM_MIN)
            .map(|(i, f)| (i, f.1, f.2))
            .collect();
        if large.is_empty() {
            return Ok((None, 0));
        }
        let root = ticket.blob_ticket().hash();
        let seq = iroh_blobs::hashseq::HashSeq::try_from(
            store.get_bytes(root).await.map_err(Error::store)?,
        )
        .map_err(|e| Error::BadData(format!("the list of files: {e}")))?;
        let mut hashes = vec![root];
        hashes.extend(seq.iter());
        let sizes = checked.files.iter().map(|f| f.2).collect();
        let swarm = ShareSwarm::start(
            Parts {
                endpoint: self.endpoint(),
                registry: &self.inner.registry,
                stores: &self.inner.swarm_stores,
                members: &self.inner.members,
                name: crate::settings::Settings::load(self.home()).device_name,
            },
            root,
            hashes,
            sizes,
            store,
            ticket.blob_ticket().addr().clone(),
            conn.clone(),
        );
        let total = checked.offer.total_size;
        let mut done_before = already;
        // Bytes that came from the sender, told to it (its view of who served whom).
        let mut from_sender_before = 0;
        for (i, hash, size) in large {
            let name = checked.offer.entries[i].name.clone();
            let (sources, joins) = swarm.sources();
            let (ptx, mut prx) = mpsc::unbounded_channel::<crate::swarm::download::Progress>();
            let forward = {
                let events = events.clone();
                let via = Via::of(conn);
                let (swarm, sender) = (&swarm, ticket.blob_ticket().addr().id);
                async move {
                    let mut rate = RateMeter::new();
                    let mut throttle = Throttle::new();
                    let mut last = None;
                    while let Some(p) = prx.recv().await {
                        // `done_before` counts what was here of this file already.
                        let done = (done_before + p.done.saturating_sub(p.start)).min(total);
                        let r = rate.update(done);
                        let from_sender = from_sender_before
                            + p.peers.iter().find(|x| x.0 == sender).map_or(0, |x| x.1);
                        swarm.set_progress(done, total, from_sender);
                        let peers = p
                            .peers
                            .iter()
                            .map(|&(id, bytes, rate)| PeerRate {
                                peer: id.to_string(),
                                sender: id == sender,
                                bytes,
                                rate: rate as f64,
                            })
                            .collect();
                        let progress = TransferProgress {
                            done,
                            total,
                            rate: r,
                            current: Some(name.clone()),
                            via,
                            peers,
                            ..Default::default()
                        };
                        if throttle.ready() {
                            events.send(ReceiveEvent::Progress(progress)).ok();
                            last = None;
                        } else {
                            last = Some(progress);
                        }
                    }
                    // The last word (who brought what) is never held back.
                    if let Some(progress) = last {
                        events.send(ReceiveEvent::Progress(progress)).ok();
                    }
                }
            };
            let fetch = crate::swarm::download::download(
                store.clone(),
                hash,
                size,
                sources,
                joins,
                Some(ptx),
                self.inner.download.clone(),
            );
            let (report, ()) = tokio::join!(fetch, forward);
            let report = match report {
                Ok(r) => r,
                // This device's trouble ends the receive.
                Err(e @ (Error::DiskFull { .. } | Error::Store(_))) => return Err(e),
                // The swarm could not finish (no peer had the rest in time): what it got stays,
                // and the plain download from the sender fetches the rest.
                Err(e) => {
                    tracing::debug!("the swarm stopped short: {e}; the rest from the sender");
                    break;
                }
            };
            let got: u64 = report.peers.values().map(|p| p.bytes).sum();
            done_before += got;
            let sender = ticket.blob_ticket().addr().id;
            from_sender_before += report.peers.get(&sender).map_or(0, |p| p.bytes);
        }
        // What the swarm added, as the store counts it (a piece partly here before counts
        // only for its new part).
        let content = HashAndFormat::hash_seq(root);
        let local = store.remote().local(content).await.map_err(Error::store)?;
        let fetched = local_payload(&local, checked).saturating_sub(already);
        Ok((Some(swarm), fetched))
    }

    /// Fetches the hash seq and the names into the store, checks the names, then learns every
    /// file's size.
    async fn fetch_offer(&self, store: &Store, conn: &Connection, hash: Hash) -> Result<Checked> {
        let request = GetRequest::new(
            hash,
            ChunkRangesSeq::from_ranges([ChunkRanges::all(), ChunkRanges::all()]),
        );
        let remote = store.remote();
        let local = remote
            .local_for_request(request)
            .await
            .map_err(Error::store)?;
        if !local.is_complete() {
            remote
                .execute_get(conn.clone(), local.missing())
                .await
                .map_err(describe_get_error)?;
        }
        // Names are checked before anything else is asked of the sender.
        let loaded = load_offer(store, hash, None).await?;
        if let Loaded::NeedSizes(_) = loaded {
            // Sizes are proven by the last chunk of each file, which is verified against the
            // file's hash. The probe is read and dropped, not stored: storing ten thousand
            // partial blobs costs more than fetching their last chunks again.
            let (_, sizes) =
                iroh_blobs::get::request::get_hash_seq_and_sizes(conn, &hash, MAX_META_SIZE, None)
                    .await
                    .map_err(describe_get_error)?;
            // sizes[0] is the metadata blob, then one per file.
            return load_offer(store, hash, Some(&sizes[1..])).await?.ready();
        }
        loaded.ready()
    }
}

/// Reads an offer whose hash seq and metadata are in the store, and checks it.
/// `sizes`, if given, are the proven sizes of the files; otherwise they come from the store.
async fn load_offer(store: &Store, hash: Hash, sizes: Option<&[u64]>) -> Result<Loaded> {
    let root_size = match store.blobs().status(hash).await.map_err(Error::store)? {
        BlobStatus::Complete { size } if size % 32 == 0 && size > 0 => size,
        _ => {
            return Err(Error::BadData(
                "the list of files is incomplete or malformed".into(),
            ))
        }
    };
    let seq =
        iroh_blobs::hashseq::HashSeq::try_from(store.get_bytes(hash).await.map_err(Error::store)?)
            .map_err(|e| Error::BadData(e.to_string()))?;
    let meta_size = match seq.iter().next() {
        Some(meta) => match store.blobs().status(meta).await.map_err(Error::store)? {
            BlobStatus::Complete { size } if size <= MAX_META_SIZE => size,
            BlobStatus::Complete { size } => {
                return Err(Error::BadData(format!(
                    "the list of names is too large ({size} bytes)"
                )))
            }
            _ => return Err(Error::BadData("the list of names is missing".into())),
        },
        None => return Err(Error::BadData("the collection is empty".into())),
    };
    let collection = Collection::load(hash, store)
        .await
        .map_err(|e| Error::BadData(format!("not a valid collection: {e}")))?;
    let paths = names::validate_names(collection.iter().map(|(n, _)| n.as_str()))?;
    let mut files = Vec::with_capacity(paths.len());
    let mut entries = Vec::with_capacity(paths.len());
    if sizes.is_some_and(|s| s.len() != paths.len()) {
        return Err(Error::BadData(
            "the sizes do not match the list of files".into(),
        ));
    }
    for (i, ((name, h), path)) in collection.iter().zip(paths).enumerate() {
        let status = store.blobs().status(*h).await.map_err(Error::store)?;
        let (size, complete) = match (status, sizes) {
            (BlobStatus::Complete { size }, _) => (size, true),
            (_, Some(sizes)) => (sizes[i], false),
            (BlobStatus::Partial { size: Some(size) }, None) => (size, false),
            _ => return Ok(Loaded::NeedSizes(name.clone())),
        };
        entries.push(OfferEntry {
            name: name.clone(),
            size,
        });
        files.push((path, *h, size, complete));
    }
    let offer = Offer {
        hash: hash.to_hex().to_string(),
        total_size: entries.iter().map(|e| e.size).sum(),
        entries,
    };
    Ok(Loaded::Ready(Checked {
        offer,
        overhead: root_size + meta_size,
        files,
    }))
}

/// Fetches the missing ranges; returns the payload bytes that crossed the network.
async fn download(
    store: &Store,
    conn: Connection,
    local: &iroh_blobs::api::remote::LocalInfo,
    checked: &Checked,
    already: u64,
    events: &mpsc::UnboundedSender<ReceiveEvent>,
    pace: &crate::limits::Limiter,
) -> Result<u64> {
    let total = checked.offer.total_size;
    // Files still to fetch, in request order, for naming the current file.
    let pending: Vec<(u64, &str, Hash)> = checked
        .files
        .iter()
        .zip(&checked.offer.entries)
        .filter(|(f, _)| !f.3)
        .map(|(f, e)| (f.2, e.name.as_str(), f.1))
        .collect();
    let mut throttle = Throttle::new();
    // The store commits its index every 500 ms on its own. A partial blob gets its index
    // entry once it outgrows the store's inline size (16 KiB). As soon as the first such
    // entry exists it is committed, and from then on twice a second, so a receiver killed
    // with SIGKILL finds its partial data again (the store rebuilds the bitfield from the
    // data and outboard files it left).
    let mut first_commit = false;
    let mut commit = Throttle::with_interval(Duration::from_millis(500));
    let mut rate = RateMeter::new();
    let path_of = conn.clone();
    let sender = conn.remote_id();
    let mut read = 0;
    let mut stream = store.remote().execute_get(conn, local.missing()).stream();
    while let Some(item) = stream.next().await {
        match item {
            GetProgressItem::Progress(offset) => {
                // The get goes on only as fast as this reads: waiting holds the sender.
                pace.pace(Some(&sender), offset.saturating_sub(read)).await;
                read = read.max(offset);
                if !first_commit {
                    if let Some(hash) = current(&pending, offset).map(|c| c.2) {
                        let status = store.blobs().status(hash).await;
                        if matches!(status, Ok(BlobStatus::Partial { .. })) {
                            store.sync_db().await.ok();
                            first_commit = true;
                            commit.ready();
                        }
                    }
                } else if commit.ready() {
                    store.sync_db().await.ok();
                }
                if throttle.ready() {
                    let done = (already + offset).min(total);
                    events
                        .send(ReceiveEvent::Progress(TransferProgress {
                            done,
                            total,
                            rate: rate.update(done),
                            current: current(&pending, offset).map(|c| c.1.to_string()),
                            via: Via::of(&path_of),
                            ..Default::default()
                        }))
                        .ok();
                }
            }
            GetProgressItem::Done(stats) => {
                events
                    .send(ReceiveEvent::Progress(TransferProgress {
                        done: total,
                        total,
                        rate: rate.update(total),
                        current: None,
                        via: Via::of(&path_of),
                        ..Default::default()
                    }))
                    .ok();
                return Ok(stats.payload_bytes_read);
            }
            GetProgressItem::Error(e) => return Err(describe_get_error(e)),
        }
    }
    Err(Error::Transfer(
        "the download ended without a result".into(),
    ))
}

/// Exports every file into a staging dir, then moves the top-level entries into place.
///
/// An attempt cancelled or failed in the middle resumes from where it stopped: exporting out
/// of the transfer's store moves a file (on one file system), so the staging directory may
/// hold the only copy of a file, and the top-level entries already moved into place are noted
/// in `moved` (in the transfer's directory). The staging directory is therefore kept until
/// everything is in place; a file found in it is kept if it has its verified content.
async fn export_all(
    store: &Store,
    mode: ExportMode,
    checked: &Checked,
    dest: &Path,
    moved: &Path,
    events: &mpsc::UnboundedSender<ReceiveEvent>,
) -> Result<Vec<PathBuf>> {
    let staging = export::staging_dir(dest, &checked.offer.hash);
    std::fs::create_dir_all(&staging).map_err(|e| Error::write(&staging, e))?;
    let saved = export_into(store, mode, checked, &staging, dest, moved, events).await?;
    std::fs::remove_dir_all(&staging).ok();
    Ok(saved)
}

/// What `moved.json` holds: the destination, and for each top-level entry the name it is
/// (or is being) moved to there.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Moved {
    dest: PathBuf,
    names: std::collections::BTreeMap<String, String>,
}

/// Top-level entries an earlier attempt into `dest` moved (or was moving) into place, and the
/// name each has there. Another destination's record is not used.
fn moved_so_far(moved: &Path, dest: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read(moved)
        .ok()
        .and_then(|b| serde_json::from_slice::<Moved>(&b).ok())
        .filter(|m| m.dest == dest)
        .unwrap_or_default()
        .names
        .into_iter()
        // Only names directly in the destination: the file is read back from disk.
        .filter(|(_, name)| names::validate_name(name).is_ok() && !name.contains('/'))
        .collect()
}

/// True if `a` and `b` are two names of one file.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
            (Ok(a), Ok(b)) => a.is_file() && a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Notes in `moved` the names the top-level entries have (or are getting) in `dest`.
fn note_moved(
    moved: &Path,
    dest: &Path,
    names: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let record = Moved {
        dest: dest.to_path_buf(),
        names: names.clone(),
    };
    crate::atomic::write_atomic(moved, &serde_json::to_vec(&record).expect("serializable"))
        .map_err(|e| Error::write(moved, e))
}

/// True if `path` is a file whose content is `hash`.
async fn holds(path: &Path, hash: Hash) -> bool {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        crate::folder::content::hash_of(&path).is_ok_and(|h| h == hash)
    })
    .await
    .unwrap_or(false)
}

async fn export_into(
    store: &Store,
    mode: ExportMode,
    checked: &Checked,
    staging: &Path,
    dest: &Path,
    moved: &Path,
    events: &mpsc::UnboundedSender<ReceiveEvent>,
) -> Result<Vec<PathBuf>> {
    let files_total = checked.files.len();
    let mut throttle = Throttle::new();
    let mut done = moved_so_far(moved, dest);
    for (i, (rel, hash, _, _)) in checked.files.iter().enumerate() {
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        // Moved into place by an earlier attempt (its staged copy is gone).
        if done.contains_key(&top) && !staging.join(&top).exists() {
            continue;
        }
        let target = export::create_parents(staging, rel)?;
        if std::fs::symlink_metadata(&target).is_ok() {
            if holds(&target, *hash).await {
                continue;
            }
            std::fs::remove_file(&target).map_err(|e| Error::write(&target, e))?;
        }
        store
            .export_with_opts(ExportOptions {
                hash: *hash,
                target: target.clone(),
                mode,
            })
            .finish()
            .await
            .map_err(|e| {
                // The store's error carries the original I/O error, so a full disk is
                // recognised by `Error::write` like everywhere else.
                let iroh_blobs::api::Error::Io(io) = iroh_blobs::api::Error::from(e);
                Error::write(&target, io)
            })?;
        if throttle.ready() || i + 1 == files_total {
            events
                .send(ReceiveEvent::Exporting {
                    files_done: i + 1,
                    files_total,
                })
                .ok();
        }
    }
    let mut saved = Vec::new();
    for top in checked.offer.top_level() {
        let staged = staging.join(&top);
        if let Some(name) = done.get(&top) {
            // Moved (a file is linked under its name, then its staged name removed): the staged
            // name is gone, or is a second name of the very file in place.
            let placed = dest.join(name);
            if !staged.exists() || same_file(&staged, &placed) {
                std::fs::remove_file(&staged).ok();
                saved.push(placed);
                continue;
            }
        }
        // The name is noted before the move: a crash right after it finds the entry there
        // (and its staged copy gone) instead of saving it a second time.
        let name = done.get(&top).cloned().unwrap_or_else(|| {
            export::free_name(dest, &top)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
        done.insert(top.clone(), name.clone());
        note_moved(moved, dest, &done)?;
        let at = export::move_into_place(&staged, dest, &name)?;
        let landed = at
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if landed != name {
            done.insert(top, landed);
            note_moved(moved, dest, &done)?;
        }
        saved.push(at);
    }
    Ok(saved)
}

/// What serving a received share on needs: the blobs that are not files (taken from the
/// transfer's store before it goes), and where each file was saved (`saved`: the top-level
/// entries in the offer's order).
async fn received_share(
    store: &Store,
    ticket: &Ticket,
    checked: &Checked,
    saved: &[PathBuf],
) -> Result<Received> {
    let root = ticket.blob_ticket().hash();
    let seq =
        iroh_blobs::hashseq::HashSeq::try_from(store.get_bytes(root).await.map_err(Error::store)?)
            .map_err(|e| Error::BadData(format!("the list of files: {e}")))?;
    let files: std::collections::HashSet<Hash> = checked.files.iter().map(|f| f.1).collect();
    let mut meta = vec![store.get_bytes(root).await.map_err(Error::store)?];
    for h in seq.iter().filter(|h| !files.contains(h)) {
        meta.push(store.get_bytes(h).await.map_err(Error::store)?);
    }
    let placed: std::collections::HashMap<String, &PathBuf> =
        checked.offer.top_level().into_iter().zip(saved).collect();
    let mut located = Vec::with_capacity(checked.files.len());
    for (rel, hash, _, _) in &checked.files {
        let mut parts = rel.components();
        let top = parts
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(at) = placed.get(&top) else {
            return Err(Error::Transfer(format!("{} was not saved", rel.display())));
        };
        let rest = parts.as_path();
        let path = if rest.as_os_str().is_empty() {
            at.to_path_buf()
        } else {
            at.join(rest)
        };
        located.push((path, *hash));
    }
    Ok(Received {
        ticket: ticket.clone(),
        meta,
        files: located,
        sizes: checked.files.iter().map(|f| f.2).collect(),
    })
}

fn local_payload(local: &iroh_blobs::api::remote::LocalInfo, checked: &Checked) -> u64 {
    // local_bytes counts the hash seq and the metadata too; only payload matters here.
    local.local_bytes().saturating_sub(checked.overhead)
}

/// The pending file that the byte `offset` of the download falls into.
fn current<'a>(
    pending: &'a [(u64, &'a str, Hash)],
    offset: u64,
) -> Option<&'a (u64, &'a str, Hash)> {
    let mut acc = 0;
    for entry in pending {
        acc += entry.0;
        if offset < acc {
            return Some(entry);
        }
    }
    pending.last()
}

fn check_space(home: &Path, dest: &Path, total: u64, missing: u64) -> Result<()> {
    // Unknown counts as one filesystem: the destination must then hold both. Outside Unix the
    // space check has always treated them as one.
    let same_fs = !cfg!(unix) || same_filesystem(home, dest).unwrap_or(true);
    let dest_need = if same_fs { total + missing } else { total };
    let margin = 16 * 1024 * 1024;
    if let Ok(available) = fs4::available_space(dest) {
        if available < dest_need + margin.min(dest_need) {
            return Err(Error::DiskFull {
                path: dest.to_path_buf(),
                needed: dest_need,
                available,
            });
        }
    }
    if !same_fs {
        if let Ok(available) = fs4::available_space(home) {
            if available < missing {
                return Err(Error::DiskFull {
                    path: home.to_path_buf(),
                    needed: missing,
                    available,
                });
            }
        }
    }
    Ok(())
}

/// Fails unless the file system of `home` has room for `missing` more bytes.
fn check_space_here(home: &Path, missing: u64) -> Result<()> {
    match fs4::available_space(home) {
        Ok(available) if available < missing => Err(Error::DiskFull {
            path: home.to_path_buf(),
            needed: missing,
            available,
        }),
        _ => Ok(()),
    }
}

/// Whether `a` and `b` are on one filesystem (a file can be renamed from one to the other);
/// `None` when that cannot be told. Each caller decides what an unknown answer means.
#[cfg(unix)]
fn same_filesystem(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => Some(a.dev() == b.dev()),
        _ => None,
    }
}

#[cfg(not(unix))]
fn same_filesystem(a: &Path, b: &Path) -> Option<bool> {
    // The same drive or share.
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => Some(a.components().next() == b.components().next()),
        _ => None,
    }
}

fn describe_get_error(e: iroh_blobs::get::GetError) -> Error {
    if let Some(code) = e.iroh_error_code() {
        if code == iroh_blobs::protocol::ERR_PERMISSION {
            return Error::Transfer("the sender no longer shares this (or never did)".into());
        }
        if code == iroh_blobs::protocol::ERR_INTERNAL {
            // The provider verifies what it reads against the hash it announced and stops
            // when they differ: a shared file was edited or removed after sharing.
            return Error::BadData(
                "the sender's copy no longer matches what it offered (a file was changed or \
                 removed after sharing); ask for a new ticket"
                    .into(),
            );
        }
    }
    let text = e.to_string();
    if let Some(io) = e.local_write() {
        if crate::error::is_disk_full(io) {
            return Error::DiskFull {
                path: PathBuf::from("the data directory"),
                needed: 0,
                available: 0,
            };
        }
        return Error::Store(text);
    }
    if text.contains("hash mismatch") || text.contains("decode") || text.contains("Decode") {
        return Error::BadData(text);
    }
    Error::Transfer(format!("{text}; run again to resume"))
}

impl Node {
    /// Gives up an unfinished receive: its partial data is no longer kept (garbage collection
    /// reclaims it) and its history record is removed.
    pub async fn discard_receive(&self, record_id: &str) -> Result<()> {
        let Some(record) = self.history().get(record_id) else {
            return Err(Error::Config(format!("no transfer with id {record_id:?}")));
        };
        if let Some(hash) = crate::folder::version::parse_hash(&record.hash) {
            self.store().tags().delete(tag_name(&hash)).await.ok();
            if transfer_store::is_open(self.home(), &hash) {
                return Err(Error::Transfer(
                    "this transfer is running; cancel it before discarding it".into(),
                ));
            }
            let dir = transfer_store::transfer_dir(self.home(), &hash);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
            }
        }
        self.history().remove(record_id);
        Ok(())
    }
}
