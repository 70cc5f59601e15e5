//! The provider's gatekeeper: decides every incoming blob request and turns transfer updates
//! into per-peer progress.
//!
//! Rules (see docs/DESIGN.md, "Access control"):
//! - a whole collection (a hash-seq request) is served only for the root of a live share, and
//!   asking for it opens that share to the peer;
//! - a single blob is served only if a share the peer opened offers it, or if it belongs to a
//!   synced folder and the peer asking is one of that folder's peers;
//! - get-many and push requests are refused: Ferry does not use them; observe requests (a
//!   peer's bitfield, for swarming) follow the single-blob rule;
//! - one peer may hold at most [`MAX_CONNECTIONS_PER_PEER`] connections and
//!   [`MAX_REQUESTS_PER_PEER`] requests in flight; beyond that it is told to retry later.
//!
//! Requests are intercepted, so a stopped share is refused from the next request on.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use iroh_blobs::provider::events::{
    AbortReason, ConnectMode, EventMask, EventSender, ObserveMode, ProviderMessage, RequestMode,
    RequestUpdate, ThrottleMode,
};
use tokio::sync::mpsc;

use crate::{
    limits::Limiter,
    progress::{RateMeter, ShareEvent, Throttle, TransferProgress},
    registry::Registry,
};

/// The event mask Ferry's provider runs with.
pub const MASK: EventMask = EventMask {
    connected: ConnectMode::Intercept,
    get: RequestMode::InterceptLog,
    get_many: RequestMode::Disabled,
    push: RequestMode::Disabled,
    observe: ObserveMode::Intercept,
    throttle: ThrottleMode::None,
};

/// Connections one peer may hold open to this node's provider at once.
/// A well-behaved peer needs a few: one per downloader (iroh-docs has one, each synced folder
/// one) plus one per one-shot receive.
pub const MAX_CONNECTIONS_PER_PEER: usize = 16;

/// Requests one peer may have in flight at once (over all its connections).
pub const MAX_REQUESTS_PER_PEER: usize = 64;

/// Starts the gatekeeper task and returns the sender to give to the blobs protocols. The
/// provider asks before each chunk it sends only if `throttle` (see [`crate::limits`]).
pub fn spawn(
    registry: Registry,
    limits: Arc<Limiter>,
    throttle: bool,
) -> (EventSender, tokio::task::JoinHandle<()>) {
    let mask = if throttle {
        EventMask {
            throttle: ThrottleMode::Intercept,
            ..MASK
        }
    } else {
        MASK
    };
    let (tx, rx) = EventSender::channel(64, mask);
    let task = tokio::spawn(run(registry, limits, rx));
    (tx, task)
}

async fn run(registry: Registry, limits: Arc<Limiter>, mut rx: mpsc::Receiver<ProviderMessage>) {
    let mut peers: HashMap<u64, String> = HashMap::new();
    let mut ids: HashMap<u64, iroh::EndpointId> = HashMap::new();
    let mut open: HashMap<iroh::EndpointId, usize> = HashMap::new();
    let mut in_flight: HashMap<iroh::EndpointId, Arc<AtomicUsize>> = HashMap::new();
    let mut touched: HashMap<u64, Vec<mpsc::UnboundedSender<ShareEvent>>> = HashMap::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            ProviderMessage::ClientConnected(msg) => {
                let peer = msg
                    .inner
                    .endpoint_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "unknown".into());
                if let Some(id) = msg.inner.endpoint_id {
                    let count = open.entry(id).or_default();
                    if *count >= MAX_CONNECTIONS_PER_PEER {
                        tracing::debug!(%peer, "refused a connection over the per-peer limit");
                        msg.tx.send(Err(AbortReason::RateLimited)).await.ok();
                        continue;
                    }
                    *count += 1;
                    ids.insert(msg.inner.connection_id, id);
                }
                peers.insert(msg.inner.connection_id, peer);
                msg.tx.send(Ok(())).await.ok();
            }
            ProviderMessage::ConnectionClosed(msg) => {
                let peer = peers.remove(&msg.inner.connection_id).unwrap_or_default();
                if let Some(id) = ids.remove(&msg.inner.connection_id) {
                    if let Some(count) = open.get_mut(&id) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            open.remove(&id);
                            registry.forget_peer(&id);
                        }
                    }
                }
                for events in touched.remove(&msg.inner.connection_id).unwrap_or_default() {
                    events
                        .send(ShareEvent::PeerDisconnected { peer: peer.clone() })
                        .ok();
                }
            }
            ProviderMessage::GetRequestReceived(msg) => {
                let request = &msg.inner.request;
                let peer_id = ids.get(&msg.inner.connection_id);
                // A live root, however it is asked for, opens its share to the peer; any
                // other hash as a collection is refused.
                let allowed = registry.open_root(&request.hash, peer_id)
                    || (request.ranges.is_blob() && registry.allows_blob(&request.hash, peer_id));
                if !allowed {
                    tracing::debug!(hash = %request.hash, "refused request for a hash no share offers");
                    msg.tx.send(Err(AbortReason::Permission)).await.ok();
                    continue;
                }
                // Counted until the request's update stream ends.
                let slot = match ids.get(&msg.inner.connection_id) {
                    Some(id) => {
                        let counter = in_flight.entry(*id).or_default().clone();
                        if counter.fetch_add(1, Ordering::SeqCst) >= MAX_REQUESTS_PER_PEER {
                            counter.fetch_sub(1, Ordering::SeqCst);
                            msg.tx.send(Err(AbortReason::RateLimited)).await.ok();
                            continue;
                        }
                        Some(InFlight(counter))
                    }
                    None => None,
                };
                msg.tx.send(Ok(())).await.ok();
                let conn = msg.inner.connection_id;
                let peer = peers.get(&conn).cloned().unwrap_or_default();
                // The update channel must always be drained: the provider treats a closed
                // channel as an internal error and resets the stream.
                let mut updates = msg.rx;
                match registry.view(&request.hash) {
                    Some(view) => {
                        let list = touched.entry(conn).or_default();
                        if !list.iter().any(|s| s.same_channel(&view.events)) {
                            view.events
                                .send(ShareEvent::PeerConnected { peer: peer.clone() })
                                .ok();
                            list.push(view.events.clone());
                        }
                        let report = is_download(&request.ranges);
                        tokio::spawn(async move {
                            track(peer, view.sizes, view.events, updates, report).await;
                            drop(slot);
                        });
                    }
                    // A single file of a share, or of a folder, asked for on its own: served,
                    // not reported.
                    None => {
                        tokio::spawn(async move {
                            while let Ok(Some(_)) = updates.recv().await {}
                            drop(slot);
                        });
                    }
                }
            }
            ProviderMessage::ObserveRequestReceived(msg) => {
                let ok = registry
                    .allows_blob(&msg.inner.request.hash, ids.get(&msg.inner.connection_id));
                let res = if ok {
                    Ok(())
                } else {
                    Err(AbortReason::Permission)
                };
                msg.tx.send(res).await.ok();
            }
            ProviderMessage::GetManyRequestReceived(msg) => {
                msg.tx.send(Err(AbortReason::Permission)).await.ok();
            }
            ProviderMessage::PushRequestReceived(msg) => {
                msg.tx.send(Err(AbortReason::Permission)).await.ok();
            }
            ProviderMessage::Throttle(msg) => {
                let peer = ids.get(&msg.inner.connection_id);
                let wait = limits.delay(peer, msg.inner.size);
                if wait.is_zero() {
                    msg.tx.send(Ok(())).await.ok();
                } else {
                    // Answered later, without holding up the other requests' messages.
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        msg.tx.send(Ok(())).await.ok();
                    });
                }
            }
            _ => {}
        }
    }
}

/// One request in flight for a peer; released when dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// True if a request downloads file data. A receiver's preview asks only for the hash seq and
/// the names, or for the last chunk of every file (to prove the sizes); such requests get no
/// progress events.
fn is_download(ranges: &iroh_blobs::protocol::ChunkRangesSeq) -> bool {
    use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt};
    // `iter` ends after the last explicitly given range, so this terminates.
    ranges
        .iter()
        .skip(2)
        .any(|r| !r.is_empty() && *r != ChunkRanges::last_chunk())
}

/// Follows one request's transfer updates and reports the peer's position in the offer.
///
/// Request index 0 is the hash seq, 1 the collection metadata, `i + 2` the `i`-th file.
async fn track(
    peer: String,
    sizes: Vec<u64>,
    events: mpsc::UnboundedSender<ShareEvent>,
    mut rx: irpc::channel::mpsc::Receiver<RequestUpdate>,
    report: bool,
) {
    if !report {
        while let Ok(Some(_)) = rx.recv().await {}
        return;
    }
    let total: u64 = sizes.iter().sum();
    let before = |i: usize| sizes.iter().take(i).sum::<u64>();
    let mut base = 0;
    let mut current = None;
    let mut throttle = Throttle::new();
    let mut rate = RateMeter::new();
    let mut aborted = false;
    while let Ok(Some(update)) = rx.recv().await {
        let (done, last) = match update {
            RequestUpdate::Started(s) => {
                current = (s.index >= 2).then(|| s.index as usize - 2);
                base = current.map(before).unwrap_or(0);
                (base, false)
            }
            RequestUpdate::Progress(p) => (base + p.end_offset, false),
            RequestUpdate::Completed(_) => {
                let end = current.map(|i| before(i + 1)).unwrap_or(base);
                (end, current == Some(sizes.len().saturating_sub(1)))
            }
            RequestUpdate::Aborted(_) => {
                aborted = true;
                break;
            }
        };
        let r = rate.update(done);
        if throttle.ready() || last {
            let progress = TransferProgress {
                done: done.min(total),
                total,
                rate: r,
                current: None,
                via: None,
                ..Default::default()
            };
            events
                .send(ShareEvent::PeerProgress {
                    peer: peer.clone(),
                    name: None,
                    progress,
                })
                .ok();
        }
    }
    // A download request asks for everything the peer is missing; when it completes, the
    // peer has the whole offer.
    if !aborted {
        events
            .send(ShareEvent::PeerProgress {
                peer: peer.clone(),
                name: None,
                progress: TransferProgress {
                    done: total,
                    total,
                    rate: 0.0,
                    current: None,
                    via: None,
                    ..Default::default()
                },
            })
            .ok();
        events.send(ShareEvent::PeerDone { peer }).ok();
    }
}
