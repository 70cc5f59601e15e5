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
//! Parts: `swarm` (large files from the share's swarm), `plain` (the rest from the sender),
//! `save` (into place, and what serving on needs).
//!
//! [`LocalInfo::missing`]: iroh_blobs::api::remote::LocalInfo::missing

mod plain;
mod save;
mod swarm;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use iroh::endpoint::Connection;
use iroh_blobs::{
    api::{
        blobs::{BlobStatus, ExportMode},
        Store,
    },
    format::collection::Collection,
    protocol::{ChunkRanges, ChunkRangesSeq, GetRequest},
    Hash, HashAndFormat,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    export,
    kept::Received,
    names,
    node::Node,
    progress::{Offer, OfferEntry, ReceiveEvent, ReceiveSummary},
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

use plain::{describe_get_error, download};
use save::{export_all, received_share};

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
        // A cancel asked for is seen before any more work: polled after it, the receive could
        // otherwise run on to its end whenever every step it awaits is already done.
        let res = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(Error::Cancelled),
            res = self.receive_into(transfer.store(), ticket, dest, keep, &events) => res,
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
            self.inner.collection.wanted();
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

fn local_payload(local: &iroh_blobs::api::remote::LocalInfo, checked: &Checked) -> u64 {
    // local_bytes counts the hash seq and the metadata too; only payload matters here.
    local.local_bytes().saturating_sub(checked.overhead)
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

impl Node {
    /// Gives up an unfinished receive: its partial data is no longer kept (garbage collection
    /// reclaims it) and its history record is removed.
    pub async fn discard_receive(&self, record_id: &str) -> Result<()> {
        let Some(record) = self.history().get(record_id) else {
            return Err(Error::Config(format!("no transfer with id {record_id:?}")));
        };
        if let Some(hash) = crate::folder::version::parse_hash(&record.hash) {
            self.store().tags().delete(tag_name(&hash)).await.ok();
            self.inner.collection.wanted();
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
