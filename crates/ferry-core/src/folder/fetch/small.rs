//! Small blobs (a folder's files up to [`MEMORY_MAX`]) fetched into memory, verified, for the
//! caller to write once where they belong: through a store each small file became three
//! files created and flushed in the store's flat directory, two removed and one moved out
//! (docs/BENCHMARKS.md, "Profile of 10,000 small files").

use std::{collections::HashSet, time::Duration};

use iroh::EndpointId;
use iroh_blobs::{protocol::GetRequest, Hash};
use n0_future::{BufferedStreamExt, StreamExt};

use super::{Fetcher, FETCH_PARALLEL, FETCH_TIMEOUT};

/// Content up to this size is fetched into memory and written once to its private name;
/// larger content arrives through a store.
pub(in crate::folder) const MEMORY_MAX: u64 = 64 * 1024;

/// How long the other peers have to answer once one has, before small blobs are fetched
/// from those that did (see [`Fetcher::connect_answering`]).
const ANSWER_GRACE: Duration = Duration::from_millis(200);

impl Fetcher {
    /// Fetches small blobs (each `(hash, its size)`, at most [`MEMORY_MAX`]) from `peers`
    /// into memory, many at once, and hands each to `keep` as it arrives whole and verified.
    /// Returns the hashes that `keep` took (it says so by returning true); the others did not
    /// arrive (no peer had them at that size in time) or were not taken.
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
        if wants.is_empty() {
            return HashSet::new();
        }
        let sources = self.connect_answering(peers).await;
        if sources.is_empty() {
            return HashSet::new();
        }
        let (sources, keep) = (&sources, &keep);
        // Spread over the peers: each blob starts at another one and goes round on failure.
        let jobs = wants
            .into_iter()
            .enumerate()
            .map(|(i, (hash, size))| async move {
                for k in 0..sources.len() {
                    let source = &sources[(i + k) % sources.len()];
                    let got =
                        tokio::time::timeout(FETCH_TIMEOUT, get_small(&source.conn, hash, size));
                    match got.await {
                        Ok(Ok(data)) => {
                            self.pace.pace(Some(&source.id), size).await;
                            return keep(hash, data).await.then_some(hash);
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(
                                "blob {} from {}: {e}",
                                hash.fmt_short(),
                                source.id.fmt_short()
                            );
                        }
                        Err(_) => {
                            tracing::debug!(
                                "blob {} from {}: timed out",
                                hash.fmt_short(),
                                source.id.fmt_short()
                            );
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

    /// Connections to those of `peers` that answer: all at once, waiting for the others
    /// only [`ANSWER_GRACE`] after the first (a folder's peers include devices that are
    /// off, each of which would otherwise hold every batch up for the connection timeout).
    async fn connect_answering(&self, peers: &[EndpointId]) -> Vec<crate::swarm::download::Source> {
        let mut tries = tokio::task::JoinSet::new();
        for &id in peers {
            let endpoint = self.endpoint.clone();
            tries.spawn(async move {
                let conn = crate::swarm::session::connect(&endpoint, id, iroh_blobs::ALPN).await;
                (id, conn)
            });
        }
        let mut sources = Vec::new();
        let mut until = None;
        loop {
            let next = match until {
                None => tries.join_next().await,
                Some(t) => match tokio::time::timeout_at(t, tries.join_next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            let Some(joined) = next else {
                break;
            };
            if let Ok((id, Some(conn))) = joined {
                sources.push(crate::swarm::download::Source {
                    id,
                    conn,
                    seed: false,
                });
                until.get_or_insert(tokio::time::Instant::now() + ANSWER_GRACE);
            }
        }
        // The peers that did not answer in time are given up (their tries end here).
        sources
    }
}

/// The whole blob `hash` from the peer at `conn`, which must be `size` bytes: refused before
/// any content is read if the peer announces another size, verified chunk by chunk as it
/// arrives (iroh-blobs), and hashed again whole before it is returned.
async fn get_small(
    conn: &iroh::endpoint::Connection,
    hash: Hash,
    size: u64,
) -> std::result::Result<Vec<u8>, String> {
    use iroh_blobs::get::fsm;
    let start = fsm::start(conn.clone(), GetRequest::blob(hash), Default::default());
    let connected = start.next().await.map_err(|e| e.to_string())?;
    let fsm::ConnectedNext::StartRoot(root) = connected.next().await.map_err(|e| e.to_string())?
    else {
        return Err("the peer answered with no blob".into());
    };
    let (content, announced) = root.next().next().await.map_err(|e| e.to_string())?;
    if announced != size {
        return Err(format!(
            "the peer announces {announced} bytes, the record {size}"
        ));
    }
    let (end, data) = content
        .concatenate_into_vec()
        .await
        .map_err(|e| e.to_string())?;
    if let fsm::EndBlobNext::Closing(closing) = end.next() {
        closing.next().await.map_err(|e| e.to_string())?;
    }
    if data.len() as u64 != size || Hash::new(&data) != hash {
        return Err("the content does not match its hash".into());
    }
    Ok(data)
}
