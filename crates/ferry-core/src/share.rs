//! Sharing: import files into the store as one collection, register it, hand out a ticket.
//!
//! Files are imported by reference ([`ImportMode::TryReference`]): the store keeps only the
//! BLAKE3 outboard and reads the bytes from the original file when a peer asks. Hashing runs
//! on all cores. The collection's root is held by a temp tag for the life of the [`Share`], so
//! garbage collection leaves it alone while it is shared and reclaims the outboards after.

use std::path::PathBuf;

use iroh_blobs::{
    api::{
        blobs::{AddPathOptions, AddProgressItem, ImportMode},
        TempTag,
    },
    format::collection::Collection,
    hashseq::HashSeq,
    ticket::BlobTicket,
    BlobFormat, Hash,
};
use n0_future::StreamExt;
use tokio::sync::mpsc;

use crate::{
    error::{Error, Result},
    node::Node,
    progress::{Offer, OfferEntry, ShareEvent, ShareInfo, Throttle},
    registry::ShareGuard,
    source,
    ticket::Ticket,
};

/// A live share. Dropping it (or calling [`Share::stop`]) stops serving it at once.
#[derive(Debug)]
pub struct Share {
    info: ShareInfo,
    _guard: ShareGuard,
    /// Introduces the receivers to each other (see [`crate::swarm::members`]).
    _members: crate::swarm::members::MembersGuard,
    _tag: TempTag,
    /// Once the tag is gone, what it kept may be collected.
    _collect: crate::collect::WantedOnDrop,
}

impl Share {
    /// What the user sees: ticket, link, offer, skipped paths.
    pub fn info(&self) -> &ShareInfo {
        &self.info
    }

    /// The ticket text.
    pub fn ticket(&self) -> &str {
        &self.info.ticket
    }

    /// Stops the share.
    pub fn stop(self) {}
}

/// Every blob of the share `root` in `store`: the root (its hash seq), then each blob the
/// seq lists (the names, then the files), in that order. The seq must be in the store whole.
pub(crate) async fn share_hashes(store: &iroh_blobs::api::Store, root: Hash) -> Result<Vec<Hash>> {
    let seq = HashSeq::try_from(store.get_bytes(root).await.map_err(Error::store)?)
        .map_err(|e| Error::BadData(format!("the list of files: {e}")))?;
    let mut hashes = vec![root];
    hashes.extend(seq.iter());
    Ok(hashes)
}

impl Node {
    /// Shares files and folders. Progress of the import, then of every downloading peer, goes
    /// to `events` for as long as the share lives.
    pub async fn share(
        &self,
        paths: &[PathBuf],
        events: mpsc::UnboundedSender<ShareEvent>,
    ) -> Result<Share> {
        let paths = paths.to_vec();
        let sources = tokio::task::spawn_blocking(move || source::collect(&paths))
            .await
            .map_err(|e| Error::Store(e.to_string()))??;
        let store = self.store().clone();
        // Moved into the share: a share that fails half-way has imported blobs nothing keeps.
        let collect = self.inner.collection.on_drop();
        let files_total = sources.files.len();
        let bytes_total: u64 = sources.files.iter().map(|f| f.size).sum();
        let cores = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);

        let mut throttle = Throttle::new();
        let mut files_done = 0;
        let mut bytes_done = 0;
        let mut imported: Vec<(usize, TempTag, u64)> = Vec::with_capacity(files_total);
        // Small files first, many at a time: each import is a few messages to the store's
        // actor and back, so with only one per core in flight the cores mostly wait on those
        // hand-offs. Large files after, one per core, so that a disk reads few files at once.
        let (small, large): (Vec<_>, Vec<_>) = sources
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (i, f.path.clone(), f.size))
            .partition(|(_, _, size)| *size <= SMALL_FILE);
        let import = {
            let store = store.clone();
            move |(i, path, _): (usize, PathBuf, u64)| import_one(store.clone(), i, path)
        };
        let mut stream = futures_buffered::BufferedStreamExt::buffered_unordered(
            n0_future::stream::iter(small.into_iter().map(import.clone())),
            SMALL_IN_FLIGHT,
        )
        .chain(futures_buffered::BufferedStreamExt::buffered_unordered(
            n0_future::stream::iter(large.into_iter().map(import)),
            cores,
        ));
        while let Some(res) = stream.next().await {
            let (i, tt, size) = res?;
            files_done += 1;
            bytes_done += size;
            imported.push((i, tt, size));
            if throttle.ready() || files_done == files_total {
                events
                    .send(ShareEvent::Importing {
                        files_done,
                        files_total,
                        bytes_done,
                        bytes_total,
                    })
                    .ok();
            }
        }
        drop(stream);
        imported.sort_by_key(|(i, _, _)| *i);

        let mut collection = Collection::default();
        let mut entries = Vec::with_capacity(files_total);
        let mut sizes = Vec::with_capacity(files_total);
        for (i, tt, size) in &imported {
            let name = sources.files[*i].name.clone();
            collection.push(name.clone(), tt.hash());
            entries.push(OfferEntry { name, size: *size });
            sizes.push(*size);
        }
        let tag = collection.store(&store).await.map_err(Error::store)?;
        // The collection's temp tag now protects the children.
        drop(imported);
        let root = tag.hash();
        let hashes = share_hashes(&store, root).await?;

        let addr = self.ticket_addr().await;
        let ticket = Ticket::new(BlobTicket::new(addr, root, BlobFormat::HashSeq))?;
        let guard = self.inner.registry.add(root, hashes, sizes, events.clone());
        let offer = Offer {
            hash: root.to_hex().to_string(),
            total_size: bytes_total_of(&entries),
            entries,
        };
        let info = ShareInfo {
            id: guard.id(),
            ticket: ticket.to_string(),
            link: ticket.to_link(),
            offer,
            skipped: sources.skipped,
        };
        events.send(ShareEvent::Ready(info.clone())).ok();
        Ok(Share {
            info,
            _guard: guard,
            _members: self.inner.members.join(root),
            _tag: tag,
            _collect: collect,
        })
    }
}

/// Files up to this size are imported [`SMALL_IN_FLIGHT`] at a time.
const SMALL_FILE: u64 = 256 * 1024;

/// How many small files are imported at once.
const SMALL_IN_FLIGHT: usize = 32;

/// Imports the file at `path` (the `i`th of the share) by reference: its temp tag and size.
async fn import_one(
    store: iroh_blobs::api::Store,
    i: usize,
    path: PathBuf,
) -> Result<(usize, TempTag, u64)> {
    let progress = store.add_path_with_opts(AddPathOptions {
        path: path.clone(),
        format: BlobFormat::Raw,
        mode: ImportMode::TryReference,
    });
    let mut items = progress.stream().await;
    let mut size = 0;
    while let Some(item) = items.next().await {
        match item {
            AddProgressItem::Size(s) => size = s,
            AddProgressItem::Done(tt) => return Ok((i, tt, size)),
            AddProgressItem::Error(e) => {
                return Err(Error::ShareSource {
                    path,
                    source: std::io::Error::other(e.to_string()),
                })
            }
            _ => {}
        }
    }
    Err(Error::ShareSource {
        path,
        source: std::io::Error::other("import ended early"),
    })
}

fn bytes_total_of(entries: &[OfferEntry]) -> u64 {
    entries.iter().map(|e| e.size).sum()
}
