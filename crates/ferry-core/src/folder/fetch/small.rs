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
                    match get_small(&source.conn, hash, size, &self.pace, &source.id).await {
                        Ok(data) => return keep(hash, data).await.then_some(hash),
                        Err(Failed::Refused(e)) => {
                            tracing::debug!(
                                "blob {} from {}: {e}",
                                hash.fmt_short(),
                                source.id.fmt_short()
                            );
                            self.forget_if_closed(source);
                        }
                        Err(Failed::TimedOut) => {
                            tracing::debug!(
                                "blob {} from {}: timed out",
                                hash.fmt_short(),
                                source.id.fmt_short()
                            );
                            stalled[at].store(true, Ordering::Relaxed);
                            // Perhaps gone without a word: connected again next time.
                            self.forget(source);
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
            // Connections to peers that left the folder, or that closed, go.
            conns
                .open
                .retain(|id, c| c.close_reason().is_none() && peers.contains(id));
            conns.tried.retain(|id, _| peers.contains(id));
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
            self.forget(source);
        }
    }

    /// Forgets the connection to `source` (unless another has taken its place).
    fn forget(&self, source: &Source) {
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

/// Why a blob did not arrive from one peer.
enum Failed {
    /// The peer took longer than [`FETCH_TIMEOUT`] (time spent waiting for the download
    /// limits not counted).
    TimedOut,
    /// The peer answered with something else than the blob at its size, or the connection
    /// failed.
    Refused(String),
}

/// `step`, unless `deadline` passes first.
async fn within<T, E: std::fmt::Display>(
    deadline: tokio::time::Instant,
    step: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, Failed> {
    match tokio::time::timeout_at(deadline, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failed::Refused(e.to_string())),
        Err(_) => Err(Failed::TimedOut),
    }
}

/// The whole blob `hash` from the peer `peer` at `conn`, which must be `size` bytes: refused
/// before any content is read if the peer announces another size, verified chunk by chunk as
/// it arrives (iroh-blobs), each piece counted against the download limits `pace` (waiting
/// as long as they say, on average: a blob in flight is not held back), and hashed again
/// whole before it is returned. The peer has [`FETCH_TIMEOUT`] for it, not counting those
/// waits.
async fn get_small(
    conn: &Connection,
    hash: Hash,
    size: u64,
    pace: &Limiter,
    peer: &EndpointId,
) -> std::result::Result<Vec<u8>, Failed> {
    use bao_tree::io::fsm::BaoContentItem;
    use iroh_blobs::get::fsm;
    let mut deadline = tokio::time::Instant::now() + FETCH_TIMEOUT;
    let start = fsm::start(conn.clone(), GetRequest::blob(hash), Default::default());
    let connected = within(deadline, start.next()).await?;
    let fsm::ConnectedNext::StartRoot(root) = within(deadline, connected.next()).await? else {
        return Err(Failed::Refused("the peer answered with no blob".into()));
    };
    let (mut content, announced) = within(deadline, root.next().next()).await?;
    if announced != size {
        return Err(Failed::Refused(format!(
            "the peer announces {announced} bytes, the record {size}"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    let end = loop {
        let step = within(deadline, async { Ok::<_, String>(content.next().await) });
        match step.await? {
            fsm::BlobContentNext::More((next, item)) => {
                let item = item.map_err(|e| Failed::Refused(e.to_string()))?;
                if let BaoContentItem::Leaf(leaf) = item {
                    let wait = pace.delay(Some(peer), leaf.data.len() as u64);
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                        deadline += wait;
                    }
                    data.extend_from_slice(&leaf.data);
                }
                content = next;
            }
            fsm::BlobContentNext::Done(end) => break end,
        }
    };
    if let fsm::EndBlobNext::Closing(closing) = end.next() {
        within(deadline, closing.next()).await?;
    }
    if data.len() as u64 != size || Hash::new(&data) != hash {
        return Err(Failed::Refused(
            "the content does not match its hash".into(),
        ));
    }
    Ok(data)
}
