//! The large files of a receive, piece by piece from the share's swarm (see [`crate::swarm`]).

use iroh::endpoint::Connection;
use iroh_blobs::{api::Store, Hash, HashAndFormat};
use tokio::sync::mpsc;

use super::{local_payload, Checked, SWARM_MIN};
use crate::{
    error::{Error, Result},
    node::Node,
    progress::{PeerRate, RateMeter, ReceiveEvent, Throttle, TransferProgress, Via},
    swarm::session::{Parts, ShareSwarm},
    ticket::Ticket,
};

impl Node {
    /// Fetches the large files of an offer that are not here yet from the share's swarm: the
    /// sender and every other receiver found (see [`crate::swarm`]). Returns this node's part
    /// in the swarm (kept while the receive goes on) and the bytes fetched.
    pub(super) async fn swarm_large_files(
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
        let hashes = crate::share::share_hashes(store, root).await?;
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
}
