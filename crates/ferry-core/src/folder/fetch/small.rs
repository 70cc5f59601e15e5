//! Small blobs (a folder's files up to [`MEMORY_MAX`]) fetched into memory, verified, for the
//! caller to write once where they belong: through a store each small file became three
//! files created and flushed in the store's flat directory, two removed and one moved out
//! (docs/BENCHMARKS.md, "Profile of 10,000 small files").

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use iroh::{endpoint::Connection, EndpointId};
use iroh_blobs::{protocol::GetRequest, Hash};
use n0_future::{BufferedStreamExt, StreamExt};

use super::{Fetcher, FETCH_PARALLEL, FETCH_TIMEOUT};
use crate::{limits::Limiter, swarm::download::Source};

/// Content up to this size is fetched into memory and written once to its private name;
/// larger content arrives through a store.
pub(in crate::folder) const MEMORY_MAX: u64 = 64 * 1024;

/// How long the first peer has to answer when none is connected yet (see
/// [`Fetcher::connect_answering`]); what does not come this way goes through the store.
const FIRST_ANSWER: Duration = Duration::from_secs(1);

/// How long the other peers have to answer once one has.
const ANSWER_GRACE: Duration = Duration::from_millis(200);

/// How long after a try to connect to a peer the next may start.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The connections to a folder's peers that small blobs are fetched over, kept between
/// fetches (a new connection per fetch would cost a handshake each time, a round trip over
/// the internet).
#[derive(Debug, Default)]
pub(in crate::folder) struct Connections {
    open: HashMap<EndpointId, Connection>,
    /// When a connection to each peer was last tried.
    tried: HashMap<EndpointId, Instant>,
}

impl Fetcher {
    /// Fetches small blobs (each `(hash, its size)`, at most [`MEMORY_MAX`]) from `peers`
    /// into memory, many at once, and hands each to `keep` as it arrives whole and verified.
    /// Returns the hashes that `keep` took (it says so by returning true); the others did not
    /// arrive (no peer answered, or had them at that size in time) or were not taken: the
    /// caller fetches those another way.
    pub(in crate::folder) async fn fetch_small<F, Fut>(
        &self,
        peers: &[EndpointId],
        wants: &[(Hash, u64)],
        keep: F,
    ) -> HashSet<Hash>
    where
        F: Fn(Hash, Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let wants: Vec<(Hash, u64)> = wants
            .iter()
            .copied()
            .filter(|(_, size)| *size <= MEMORY_MAX)
            .collect();
        let sources = match wants.is_empty() {
            true => Vec::new(),
            false => self.connect_answering(peers).await,
        };
        if sources.is_empty() {
            return HashSet::new();
        }
        // A peer that lets a blob time out is not asked again in this fetch: it would cost
        // the timeout for every blob that starts at it.
        let stalled: Vec<AtomicBool> = sources.iter().map(|_| AtomicBool::new(false)).collect();
        let (sources, stalled, keep) = (&sources, &stalled, &keep);
        // Spread over the peers: each blob starts at another one and goes round on failure.
        let jobs = wants
            .into_iter()
            .enumerate()
            .map(|(i, (hash, size))| async move {
                for k in 0..sources.len() {
                    let at = (i + k) % sources.len();
                    if stalled[at].load(Ordering::Relaxed) {
                        continue;
                    }
                    let source = &sources[at];
                    let get = get_small(&source.conn, hash, size, &self.pace, &source.id);
                    match tokio::time::timeout(FETCH_TIMEOUT, get).await {
                        Ok(Ok(data)) => return keep(hash, data).await.then_some(hash),
                        Ok(Err(e)) => {
                            tracing::debug!(
                                "blob {} from {}: {e}",
                                hash.fmt_short(),
                                source.id.fmt_short()
                            );
                            self.forget_if_closed(source);
                        }
                        Err(_) => {
                            tracing::debug!(
                                "blob {} from {}: timed out",
                                hash.fmt_short(),
                                source.id.fmt_short()
                            );
                            stalled[at].store(true, Ordering::Relaxed);
                        }
                    }
                }
                None
            });
        n0_future::stream::iter(jobs)
            .buffered_unordered(FETCH_PARALLEL)
            .collect::<Vec<Option<Hash>>>()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Connections to those of `peers` that answer. Open ones are used as they are, and peers
    /// without one are tried in the background for the next fetch (each at most every
    /// [`RETRY_AFTER`]). With none open, the tries are waited for, up to [`FIRST_ANSWER`] for
    /// the first and [`ANSWER_GRACE`] more for the others: a folder's peers include devices
    /// that are off, each of which would otherwise hold the round up for the connection
    /// timeout.
    async fn connect_answering(&self, peers: &[EndpointId]) -> Vec<Source> {
        let now = Instant::now();
        let mut sources = Vec::new();
        let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
        {
            let mut conns = self.conns.lock().expect("connections lock");
            conns.open.retain(|_, c| c.close_reason().is_none());
            for &id in peers {
                if let Some(conn) = conns.open.get(&id) {
                    sources.push(Source {
                        id,
                        conn: conn.clone(),
                        seed: false,
                    });
                    continue;
                }
                if conns
                    .tried
                    .get(&id)
                    .is_some_and(|at| now.saturating_duration_since(*at) < RETRY_AFTER)
                {
                    continue;
                }
                conns.tried.insert(id, now);
                let (endpoint, conns, tx) = (self.endpoint.clone(), self.conns.clone(), tx.clone());
                tokio::spawn(async move {
                    let conn =
                        crate::swarm::session::connect(&endpoint, id, iroh_blobs::ALPN).await;
                    if let Some(conn) = &conn {
                        let mut conns = conns.lock().expect("connections lock");
                        conns.open.insert(id, conn.clone());
                        conns.tried.remove(&id);
                    }
                    tx.send((id, conn)).ok();
                });
            }
        }
        drop(tx);
        if !sources.is_empty() {
            return sources;
        }
        let mut until = tokio::time::Instant::now() + FIRST_ANSWER;
        let mut answered = false;
        loop {
            let Ok(next) = tokio::time::timeout_at(until, answers.recv()).await else {
                break;
            };
            let Some((id, conn)) = next else {
                break;
            };
            if let Some(conn) = conn {
                sources.push(Source {
                    id,
                    conn,
                    seed: false,
                });
                if !answered {
                    answered = true;
                    until = tokio::time::Instant::now() + ANSWER_GRACE;
                }
            }
        }
        // Tries still under way go on; what they open is used next time.
        sources
    }

    /// Forgets the connection to `source` if it has closed: the next fetch connects again.
    fn forget_if_closed(&self, source: &Source) {
        if source.conn.close_reason().is_some() {
            let mut conns = self.conns.lock().expect("connections lock");
            if conns
                .open
                .get(&source.id)
                .is_some_and(|c| c.stable_id() == source.conn.stable_id())
            {
                conns.open.remove(&source.id);
            }
        }
    }
}

/// The whole blob `hash` from the peer `peer` at `conn`, which must be `size` bytes: refused
/// before any content is read if the peer announces another size, verified chunk by chunk as
/// it arrives (iroh-blobs), read only as fast as the download limits `pace` allow, and hashed
/// again whole before it is returned.
async fn get_small(
    conn: &Connection,
    hash: Hash,
    size: u64,
    pace: &Limiter,
    peer: &EndpointId,
) -> std::result::Result<Vec<u8>, String> {
    use bao_tree::io::fsm::BaoContentItem;
    use iroh_blobs::get::fsm;
    let start = fsm::start(conn.clone(), GetRequest::blob(hash), Default::default());
    let connected = start.next().await.map_err(|e| e.to_string())?;
    let fsm::ConnectedNext::StartRoot(root) = connected.next().await.map_err(|e| e.to_string())?
    else {
        return Err("the peer answered with no blob".into());
    };
    let (mut content, announced) = root.next().next().await.map_err(|e| e.to_string())?;
    if announced != size {
        return Err(format!(
            "the peer announces {announced} bytes, the record {size}"
        ));
    }
    let mut data = Vec::with_capacity(size as usize);
    let end = loop {
        match content.next().await {
            fsm::BlobContentNext::More((next, item)) => {
                if let BaoContentItem::Leaf(leaf) = item.map_err(|e| e.to_string())? {
                    pace.pace(Some(peer), leaf.data.len() as u64).await;
                    data.extend_from_slice(&leaf.data);
                }
                content = next;
            }
            fsm::BlobContentNext::Done(end) => break end,
        }
    };
    if let fsm::EndBlobNext::Closing(closing) = end.next() {
        closing.next().await.map_err(|e| e.to_string())?;
    }
    if data.len() as u64 != size || Hash::new(&data) != hash {
        return Err("the content does not match its hash".into());
    }
    Ok(data)
}
