//! The peers of one folder: every peer met (from the ticket, in the document's sync or its
//! gossip), which of them are connected now, and who is told about a new one (the node, which
//! keeps the list across restarts). Only met peers are served the folder's records and content
//! (the registry learns them from [`FolderSync::add_peer`](super::engine::FolderSync::add_peer)).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant, SystemTime},
};

use iroh::EndpointId;
use tokio::sync::mpsc;

use crate::folder::activity::FolderPeer;

/// See the module docs.
pub(super) struct Swarm {
    me: EndpointId,
    inner: std::sync::Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    known: HashSet<EndpointId>,
    connected: HashSet<EndpointId>,
    /// When the document last reconciled with each peer successfully, and when (by the
    /// wall clock, as iroh-docs reports it) that reconciliation began.
    synced: HashMap<EndpointId, (Instant, SystemTime)>,
    on_new: Option<mpsc::UnboundedSender<EndpointId>>,
}

impl Swarm {
    /// The swarm of a folder on the device `me` (never a peer of itself).
    pub(super) fn new(me: EndpointId) -> Swarm {
        Swarm {
            me,
            inner: std::sync::Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("swarm lock")
    }

    /// Tells `tx` about every peer met from now on.
    pub(super) fn on_new(&self, tx: mpsc::UnboundedSender<EndpointId>) {
        self.lock().on_new = Some(tx);
    }

    /// Notes a peer met; true if it is new.
    pub(super) fn meet(&self, peer: EndpointId) -> bool {
        if peer == self.me {
            return false;
        }
        let mut inner = self.lock();
        if !inner.known.insert(peer) {
            return false;
        }
        if let Some(tx) = &inner.on_new {
            tx.send(peer).ok();
        }
        true
    }

    /// Notes that a met peer is connected (`true`) or no longer is.
    pub(super) fn set_connected(&self, peer: EndpointId, up: bool) {
        let mut inner = self.lock();
        if up {
            inner.connected.insert(peer);
        } else {
            inner.connected.remove(&peer);
        }
    }

    /// Notes that the document reconciled with `peer` at `now`, in a reconciliation that
    /// began at `started`.
    pub(super) fn set_synced(&self, peer: EndpointId, now: Instant, started: SystemTime) {
        self.lock().synced.insert(peer, (now, started));
    }

    /// Every peer met that no successful reconciliation begun at or after `since` reached
    /// (one that began later holds every entry the document had at `since`).
    pub(super) fn not_synced_since(&self, since: SystemTime) -> Vec<EndpointId> {
        let inner = self.lock();
        inner
            .known
            .iter()
            .filter(|id| {
                inner
                    .synced
                    .get(*id)
                    .is_none_or(|(_, began)| *began < since)
            })
            .copied()
            .collect()
    }

    /// Every peer met that may not be reachable: not connected (in the document's gossip)
    /// and not reconciled with `within` before `now`. (Gossip does not always say a peer is
    /// up when it is: a peer that reconciles is reachable, whatever gossip said.)
    pub(super) fn unreached(&self, now: Instant, within: Duration) -> Vec<EndpointId> {
        let inner = self.lock();
        inner
            .known
            .iter()
            .filter(|id| !inner.connected.contains(*id))
            .filter(|id| {
                inner
                    .synced
                    .get(*id)
                    .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= within)
            })
            .copied()
            .collect()
    }

    /// Every peer met.
    pub(super) fn known(&self) -> Vec<EndpointId> {
        self.lock().known.iter().copied().collect()
    }

    /// Every peer met, for people: the connected ones first.
    pub(super) fn list(&self) -> Vec<FolderPeer> {
        let inner = self.lock();
        let mut peers: Vec<FolderPeer> = inner
            .known
            .iter()
            .map(|id| FolderPeer {
                id: id.to_string(),
                connected: inner.connected.contains(id),
                name: None,
                via: None,
            })
            .collect();
        peers.sort_by(|a, b| (!a.connected, &a.id).cmp(&(!b.connected, &b.id)));
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EndpointId {
        iroh::SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn a_peer_is_met_once_and_never_itself() {
        let swarm = Swarm::new(id(0));
        let (tx, mut rx) = mpsc::unbounded_channel();
        swarm.on_new(tx);
        assert!(!swarm.meet(id(0)), "not a peer of itself");
        assert!(swarm.meet(id(1)));
        assert!(!swarm.meet(id(1)));
        assert_eq!(rx.try_recv().unwrap(), id(1));
        assert!(rx.try_recv().is_err(), "told once");
        assert_eq!(swarm.known(), [id(1)]);
    }

    #[test]
    fn peers_neither_connected_nor_reconciled_lately_are_the_unreached() {
        let swarm = Swarm::new(id(0));
        for n in 1..=3 {
            swarm.meet(id(n));
        }
        let t0 = Instant::now();
        let within = Duration::from_secs(300);
        swarm.set_connected(id(1), true);
        swarm.set_synced(id(2), t0, SystemTime::now());
        let mut unreached = swarm.unreached(t0 + Duration::from_secs(10), within);
        assert_eq!(unreached, [id(3)]);
        unreached = swarm.unreached(t0 + within, within);
        unreached.sort();
        let mut expected = vec![id(2), id(3)];
        expected.sort();
        assert_eq!(unreached, expected, "reconciled too long ago");
    }

    #[test]
    fn peers_not_reconciled_since_a_change_are_those_whose_last_reconciliation_began_before_it() {
        let swarm = Swarm::new(id(0));
        for n in 1..=3 {
            swarm.meet(id(n));
        }
        let t0 = SystemTime::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        swarm.set_synced(id(1), Instant::now(), at(5));
        swarm.set_synced(id(2), Instant::now(), at(15));
        let mut left = swarm.not_synced_since(at(10));
        left.sort();
        let mut expected = vec![id(1), id(3)];
        expected.sort();
        assert_eq!(
            left, expected,
            "began before the change, or never reconciled"
        );
        assert!(
            !swarm.not_synced_since(at(15)).contains(&id(2)),
            "began at it"
        );
        assert_eq!(swarm.not_synced_since(at(16)).len(), 3, "all began before");
    }

    #[test]
    fn connected_peers_come_first_and_go_down() {
        let swarm = Swarm::new(id(0));
        for n in 1..=3 {
            swarm.meet(id(n));
        }
        swarm.set_connected(id(2), true);
        let list = swarm.list();
        assert_eq!(list[0].id, id(2).to_string());
        assert!(list[0].connected);
        assert_eq!(list.iter().filter(|p| p.connected).count(), 1);
        swarm.set_connected(id(2), false);
        assert!(swarm.list().iter().all(|p| !p.connected));
    }
}
