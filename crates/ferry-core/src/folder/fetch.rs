//! Fetching a folder's blobs from its peers: records and other blobs into the home's store,
//! small files into memory ([`small`]), large files (piece by piece from every peer that has
//! them, see [`crate::swarm`]) and the changed blocks of an edit into a store of their own
//! under `.ferry/incoming/<hash>` (kept between attempts, removed once used; see
//! [`incoming`](super::incoming)).
//!
//! A peer names hashes and sizes, so every fetch is bounded by the size its record claims (plus
//! the last chunk, whose proof gives the blob's real size), every byte is verified against the
//! hash on arrival (iroh-blobs), and a blob whose proven size is not the claimed one is refused
//! for good. Which peers to ask is the caller's knowledge (the folder's [`Swarm`](super::swarm)
//! and the document's sync peers); this part only fetches.

use std::{collections::HashSet, path::PathBuf, sync::Arc, time::Duration};

use iroh::EndpointId;
use iroh_blobs::{
    api::{
        downloader::{DownloadProgress, DownloadProgressItem, Downloader, Shuffled},
        proto::BlobStatus,
        Store,
    },
    protocol::{ChunkRanges, ChunkRangesExt, GetRequest},
    Hash,
};
use n0_future::{BufferedStreamExt, StreamExt};

use crate::{
    error::{Error, Result},
    folder::version::RecordHash,
    limits::Limiter,
    transfer_store::{self, TransferStore},
};

mod small;
use small::Connections;
pub(super) use small::MEMORY_MAX;

/// How many blobs a folder fetches at once.
const FETCH_PARALLEL: usize = 32;

/// How long one blob may take to arrive before the path is retried later.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one attempt at fetching a large file apart may take; what arrived is kept for
/// the next (the round that asked goes on meanwhile).
const APART_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one attempt at fetching the changed blocks of an edit may take.
const RANGES_TIMEOUT: Duration = Duration::from_secs(120);

/// See the module docs.
pub(super) struct Fetcher {
    /// The home's store: records, block lists, files between 64 KiB and 64 MiB, and small
    /// files that did not arrive in memory.
    store: Store,
    endpoint: iroh::Endpoint,
    /// One downloader for the folder's lifetime: it keeps its connections to peers open
    /// between fetches (a new one per fetch would open new connections each time).
    downloader: Downloader,
    /// Where blobs fetched apart are kept, one store per hash.
    incoming: PathBuf,
    /// The node's download limits, through a part that counts this folder's downloads.
    pace: Arc<Limiter>,
    /// Connections small files are fetched over (see [`small`]).
    conns: Arc<std::sync::Mutex<Connections>>,
}

impl Fetcher {
    /// A fetcher into `store` over `endpoint`, keeping blobs fetched apart under `incoming`,
    /// within the download limits of `pace`.
    pub(super) fn new(
        store: Store,
        endpoint: iroh::Endpoint,
        incoming: PathBuf,
        pace: Arc<Limiter>,
    ) -> Fetcher {
        Fetcher {
            downloader: store.downloader(&endpoint),
            store,
            endpoint,
            incoming,
            pace: Arc::new(Limiter::within(pace)),
            conns: Default::default(),
        }
    }

    /// Payload bytes this folder has fetched since it started.
    pub(super) fn fetched(&self) -> u64 {
        self.pace.counted()
    }

    /// Fetches blobs into the home's store from `peers`, each `(hash, at most this many
    /// bytes)`. True if all arrived whole; what arrived of the others stays for the next try.
    pub(super) async fn fetch(&self, peers: &[EndpointId], wants: &[(Hash, u64)]) -> bool {
        if peers.is_empty() {
            return false;
        }
        // Many small files are many round trips: keep several in flight.
        let jobs: Vec<_> = wants
            .iter()
            .copied()
            .map(|(hash, max)| {
                let get = bounded(hash, max);
                let fetch = self.downloader.download(get, Shuffled::new(peers.to_vec()));
                downloaded(hash, FETCH_TIMEOUT, paced(fetch, &self.pace))
            })
            .collect();
        let fetched: Vec<bool> = n0_future::stream::iter(jobs)
            .buffered_unordered(FETCH_PARALLEL)
            .collect()
            .await;
        fetched.iter().all(|ok| *ok)
    }

    /// The store apart for `hash`, opened (created if new) with what earlier attempts left.
    pub(super) async fn apart(&self, hash: Hash) -> Result<TransferStore> {
        TransferStore::open_dir(self.incoming.join(hash.to_hex())).await
    }

    /// Fetches `hash`, at most `size` bytes, into its store apart: first the proof of its
    /// size (its last chunk, from any peer), then its pieces from every peer that has it at
    /// once (see [`crate::swarm`]). `Some` with the store if it is there whole at that size;
    /// `None` if not yet (no peer has it, or the time for one attempt ran out; what arrived is
    /// kept). Content whose proven size is another one is an error, and its store is removed:
    /// a later attempt has no use for it.
    pub(super) async fn fetch_apart(
        &self,
        peers: &[EndpointId],
        hash: Hash,
        size: u64,
    ) -> Result<Option<TransferStore>> {
        if peers.is_empty() {
            return Ok(None);
        }
        let transfer = self.apart(hash).await?;
        let store = transfer.store();
        let what = format!("content {}", hash.fmt_short());
        // The size first: a record that lies about it costs one chunk, not the file.
        let proof = store
            .downloader(&self.endpoint)
            .download(bounded(hash, 0), Shuffled::new(peers.to_vec()));
        if !downloaded(hash, FETCH_TIMEOUT, paced(proof, &self.pace)).await {
            transfer.close(false).await;
            return Ok(None);
        }
        match holds_whole(store, hash, size, &what).await {
            // A file of one chunk (or one resumed to its end) is whole already.
            Ok(true) => return Ok(Some(transfer)),
            Ok(false) => {}
            Err(e) => {
                transfer.close(matches!(e, Error::BadData(_))).await;
                return Err(e);
            }
        }
        let sources = self.connect_all(peers).await;
        if !sources.is_empty() {
            // No peer joins later in this attempt: it ends when these cannot finish.
            let (_, joins) = tokio::sync::mpsc::unbounded_channel();
            let pace = self.pace.clone();
            let fetch = crate::swarm::download::download(
                store.clone(),
                hash,
                size,
                sources,
                joins,
                None,
                pace,
            );
            match tokio::time::timeout(APART_TIMEOUT, fetch).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!("fetching {what}: {e}"),
                Err(_) => tracing::debug!("fetching {what} continues later"),
            }
        }
        match holds_whole(store, hash, size, &what).await {
            Ok(true) => Ok(Some(transfer)),
            Ok(false) => {
                transfer.close(false).await;
                Ok(None)
            }
            Err(e) => {
                transfer.close(matches!(e, Error::BadData(_))).await;
                Err(e)
            }
        }
    }

    /// Connections to `peers` over the blobs protocol, those that answer in time.
    async fn connect_all(&self, peers: &[EndpointId]) -> Vec<crate::swarm::download::Source> {
        let tries = peers.iter().map(|&id| async move {
            let conn = crate::swarm::session::connect(&self.endpoint, id, iroh_blobs::ALPN).await?;
            Some(crate::swarm::download::Source {
                id,
                conn,
                seed: false,
            })
        });
        n0_future::join_all(tries)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Fetches the byte ranges `chunks` of `hash` into `store` (a store apart), verified on
    /// arrival. True if they all arrived; what did stays for the next attempt.
    pub(super) async fn fetch_ranges(
        &self,
        peers: &[EndpointId],
        store: &Store,
        hash: Hash,
        chunks: ChunkRanges,
    ) -> bool {
        if peers.is_empty() {
            return false;
        }
        let download = store.downloader(&self.endpoint).download(
            GetRequest::blob_ranges(hash, chunks),
            Shuffled::new(peers.to_vec()),
        );
        downloaded(hash, RANGES_TIMEOUT, paced(download, &self.pace)).await
    }

    /// The size of `hash` if the home's store holds it whole.
    pub(super) async fn stored_size(&self, hash: Hash) -> Option<u64> {
        match self.store.blobs().status(hash).await {
            Ok(BlobStatus::Complete { size }) => Some(size),
            _ => None,
        }
    }

    /// Whether the home's store holds `hash` whole at `size` (see [`holds_whole`]).
    pub(super) async fn holds(&self, hash: Hash, size: u64, what: &str) -> Result<bool> {
        holds_whole(&self.store, hash, size, what).await
    }

    /// Removes the stores apart that no hash in `wanted` names any more (the file was changed
    /// or deleted again before it arrived), unless a fetch has one open.
    pub(super) fn forget_stale(&self, wanted: &HashSet<RecordHash>) {
        let Ok(entries) = std::fs::read_dir(&self.incoming) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            // Only the stores this part made (named by a hash) are its to remove.
            let Some(hash) = name
                .to_str()
                .filter(|n| !n.is_empty())
                .and_then(RecordHash::parse)
            else {
                continue;
            };
            if !wanted.contains(&hash) && !transfer_store::is_open_dir(&entry.path()) {
                std::fs::remove_dir_all(entry.path()).ok();
            }
        }
    }

    /// Where the stores apart are kept.
    #[cfg(test)]
    fn incoming(&self) -> &std::path::Path {
        &self.incoming
    }
}

/// Drives `download`, waiting after each piece of progress as long as the download limits say
/// (the download goes on only as fast as its progress is read).
async fn paced(download: DownloadProgress, pace: &Limiter) -> std::result::Result<(), String> {
    let mut stream = download.stream().await.map_err(|e| e.to_string())?;
    // Progress counts what was here before the attempt too: the first report of an attempt is
    // where it starts, not bytes that came.
    let (mut read, mut from): (Option<u64>, _) = (None, None);
    while let Some(item) = stream.next().await {
        match item {
            DownloadProgressItem::TryProvider { id, .. } => {
                from = Some(id);
                read = None;
            }
            DownloadProgressItem::Progress(total) => {
                if let Some(before) = read {
                    pace.pace(from.as_ref(), total.saturating_sub(before)).await;
                }
                read = Some(read.map_or(total, |r| r.max(total)));
            }
            DownloadProgressItem::Error(e) => return Err(e.to_string()),
            DownloadProgressItem::DownloadError => return Err("no peer had it whole".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Waits up to `limit` for a download of (part of) `hash`; true if it completed. Whatever
/// arrived stays in the store for the next attempt.
async fn downloaded<E: std::fmt::Display>(
    hash: Hash,
    limit: Duration,
    download: impl std::future::IntoFuture<Output = std::result::Result<(), E>>,
) -> bool {
    match tokio::time::timeout(limit, download).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!("blob {} not available yet: {e}", hash.fmt_short());
            false
        }
        Err(_) => {
            tracing::debug!("fetching blob {} continues later", hash.fmt_short());
            false
        }
    }
}

/// A request for at most `max` bytes of `hash`, and its last chunk, whose proof gives the
/// blob's real size: a blob larger than claimed stays partial, with that size known.
fn bounded(hash: Hash, max: u64) -> GetRequest {
    GetRequest::blob_ranges(hash, ChunkRanges::bytes(0..max) | ChunkRanges::last_chunk())
}

/// Whether `store` holds `hash` whole at the `size` a record claims: `Ok(true)` if so,
/// `Ok(false)` while it is incomplete with its size not known yet. A proven size that is
/// another one (a [`bounded`] fetch of a larger blob stays partial, its size known) means the
/// record lies: refused for good, naming `what`.
async fn holds_whole(store: &Store, hash: Hash, size: u64, what: &str) -> Result<bool> {
    match store.blobs().status(hash).await.map_err(Error::store)? {
        BlobStatus::Complete { size: s } if s == size => Ok(true),
        BlobStatus::Complete { size: s } | BlobStatus::Partial { size: Some(s) } if s != size => {
            Err(Error::BadData(format!(
                "{what} is {s} bytes, its record says {size}"
            )))
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use iroh::{address_lookup::MemoryLookup, endpoint::presets, protocol::Router, RelayMode};
    use iroh_blobs::{store::mem::MemStore, BlobsProtocol};

    use super::*;

    /// An endpoint on loopback that finds its peers through `lookup`.
    async fn endpoint(lookup: &MemoryLookup) -> iroh::Endpoint {
        let ep = iroh::Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .address_lookup(lookup.clone())
            .clear_ip_transports()
            .bind_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            .unwrap()
            .alpns(vec![iroh_blobs::ALPN.to_vec()])
            .bind()
            .await
            .unwrap();
        lookup.add_endpoint_info(ep.addr());
        ep
    }

    /// A peer serving `blobs`, and a fetcher that knows its address.
    struct Setup {
        _peer: Router,
        peer_id: EndpointId,
        hashes: Vec<Hash>,
        fetcher: Fetcher,
        home: MemStore,
        lookup: MemoryLookup,
        _dir: tempfile::TempDir,
    }

    async fn setup(blobs: &[Vec<u8>]) -> Setup {
        let lookup = MemoryLookup::new();
        let served = MemStore::new();
        let mut hashes = Vec::new();
        for b in blobs {
            hashes.push(served.add_bytes(b.clone()).await.unwrap().hash);
        }
        let ep = endpoint(&lookup).await;
        let peer_id = ep.id();
        let peer = Router::builder(ep)
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(&served, None))
            .spawn();
        let home = MemStore::new();
        let dir = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(
            (*home).clone(),
            endpoint(&lookup).await,
            dir.path().join("incoming"),
            Default::default(),
        );
        Setup {
            _peer: peer,
            peer_id,
            hashes,
            fetcher,
            home,
            lookup,
            _dir: dir,
        }
    }

    #[tokio::test]
    async fn fetches_what_peers_have_and_nothing_without_peers() {
        let s = setup(&[vec![1; 5000], vec![2; 300]]).await;
        let wants = [(s.hashes[0], 5000), (s.hashes[1], 300)];
        assert!(!s.fetcher.fetch(&[], &wants).await, "no peer, nothing");
        assert!(s.fetcher.fetch(&[s.peer_id], &wants).await);
        assert_eq!(s.fetcher.stored_size(s.hashes[0]).await, Some(5000));
        assert!(s.fetcher.holds(s.hashes[1], 300, "b").await.unwrap());
        assert_eq!(s.home.get_bytes(s.hashes[1]).await.unwrap(), vec![2; 300]);
    }

    #[tokio::test]
    async fn a_blob_larger_than_its_record_claims_is_not_fetched_whole_and_is_refused() {
        let big = vec![7u8; 1 << 20];
        let s = setup(&[big]).await;
        // A record claiming 16 KiB for a 1 MiB blob.
        s.fetcher
            .fetch(&[s.peer_id], &[(s.hashes[0], 16 << 10)])
            .await;
        assert_eq!(s.fetcher.stored_size(s.hashes[0]).await, None, "not whole");
        let err = s
            .fetcher
            .holds(s.hashes[0], 16 << 10, "it")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BadData(_)), "{err}");
        assert!(err.to_string().contains("1048576 bytes"), "{err}");
        // Apart: refused as well, and its store removed.
        let Err(err) = s
            .fetcher
            .fetch_apart(&[s.peer_id], s.hashes[0], 16 << 10)
            .await
        else {
            panic!("a blob that lies about its size was accepted");
        };
        assert!(matches!(err, Error::BadData(_)), "{err}");
        let left = std::fs::read_dir(s.fetcher.incoming()).unwrap().count();
        assert_eq!(left, 0, "nothing kept of a blob that lies about its size");
    }

    #[tokio::test]
    async fn small_blobs_arrive_in_memory_only_at_the_size_their_record_claims() {
        let (one, two) = (vec![5u8; 3000], vec![6u8; 40_000]);
        let s = setup(&[one.clone(), two.clone(), vec![8; 100_000]]).await;
        let got = std::sync::Mutex::new(Vec::new());
        let keep = |h: Hash, data: Vec<u8>| {
            got.lock().unwrap().push((h, data));
            async { true }
        };
        let wants = [
            (s.hashes[0], 3000),
            // A record that claims less than the peer has.
            (s.hashes[1], 30_000),
            // Too large to be fetched into memory.
            (s.hashes[2], 100_000),
        ];
        assert!(s.fetcher.fetch_small(&[], &wants, keep).await.is_empty());
        // Members that are off: their addresses take packets and never answer.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let off = |lookup: &MemoryLookup| {
            let id = iroh::SecretKey::generate().public();
            lookup.add_endpoint_info(
                iroh::EndpointAddr::new(id).with_ip_addr(silent.local_addr().unwrap()),
            );
            id
        };
        // Each costs a round the connection timeout (5 s) if waited for.
        let started = std::time::Instant::now();
        let none = s.fetcher.fetch_small(&[off(&s.lookup)], &wants, keep).await;
        assert!(none.is_empty() && got.lock().unwrap().is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "waited for the only member, which is off: {:?}",
            started.elapsed()
        );
        let off = off(&s.lookup);
        let started = std::time::Instant::now();
        let kept = s.fetcher.fetch_small(&[off, s.peer_id], &wants, keep).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "waited for the member that is off: {:?}",
            started.elapsed()
        );
        assert_eq!(kept, [s.hashes[0]].into_iter().collect());
        assert_eq!(*got.lock().unwrap(), vec![(s.hashes[0], one)]);
        let right = s
            .fetcher
            .fetch_small(&[s.peer_id], &[(s.hashes[1], 40_000)], keep)
            .await;
        assert_eq!(right, [s.hashes[1]].into_iter().collect());
        assert_eq!(got.lock().unwrap().last(), Some(&(s.hashes[1], two)));
        // Nothing went into the home's store: what to do with it is the caller's.
        assert_eq!(s.fetcher.stored_size(s.hashes[0]).await, None);
        assert_eq!(s.fetcher.fetched(), 43_000);
        // A blob the caller does not take is not counted as kept.
        let refused = s
            .fetcher
            .fetch_small(&[s.peer_id], &[(s.hashes[0], 3000)], |_, _| async { false })
            .await;
        assert!(refused.is_empty());
    }

    #[tokio::test]
    async fn fetched_apart_stays_apart_and_stale_stores_are_forgotten() {
        let s = setup(&[vec![3; 200_000], vec![4; 100]]).await;
        let t = s
            .fetcher
            .fetch_apart(&[s.peer_id], s.hashes[0], 200_000)
            .await
            .unwrap()
            .expect("whole");
        assert_eq!(
            t.store().get_bytes(s.hashes[0]).await.unwrap().len(),
            200_000
        );
        assert_eq!(
            s.fetcher.stored_size(s.hashes[0]).await,
            None,
            "not in the home's store"
        );
        t.close(false).await;
        // A second store apart, then only the first one is still wanted.
        s.fetcher
            .apart(s.hashes[1])
            .await
            .unwrap()
            .close(false)
            .await;
        let keep = s.hashes[0].to_hex().to_string();
        std::fs::create_dir(s.fetcher.incoming().join("not-a-hash")).unwrap();
        s.fetcher
            .forget_stale(&[RecordHash::parse(&keep).unwrap()].into_iter().collect());
        let mut left: Vec<String> = std::fs::read_dir(s.fetcher.incoming())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec![keep, "not-a-hash".to_string()]);
    }

    #[tokio::test]
    async fn ranges_arrive_into_the_given_store_verified() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let s = setup(std::slice::from_ref(&data)).await;
        let t = s.fetcher.apart(s.hashes[0]).await.unwrap();
        let chunks = ChunkRanges::bytes(65536..131072);
        assert!(
            s.fetcher
                .fetch_ranges(&[s.peer_id], t.store(), s.hashes[0], chunks)
                .await
        );
        let got = t
            .store()
            .export_ranges(s.hashes[0], 65536..131072)
            .concatenate()
            .await
            .unwrap();
        assert_eq!(got, data[65536..131072]);
        t.close(true).await;
    }
}
