//! When a folder reconciles its document with its peers again. iroh-docs syncs when a peer
//! joins and then relies on gossip, which drops what a slow subscriber has not taken and
//! misses entries inserted while its mesh forms: a reconciliation finds those. But each one
//! has both sides read every entry of the document (iroh-docs 0.101 computes a range's
//! fingerprint entry by entry), so in a folder of 100,000 files one every 10 s was most of
//! what an idle daemon did. A reconciliation is symmetric: whichever side had its entries
//! missed, the side that wrote them reconciles while it is writing. So a folder reconciles
//! with all its peers every [`RESYNC_EVERY`] while its document changes (an entry written here
//! or arriving, a peer connecting) and once more after the last change (a sync asked for
//! while one with that peer runs is dropped by iroh-docs), otherwise every [`RESYNC_QUIET`];
//! and with the peers that may be unreachable (not connected in gossip, not reconciled with
//! lately) every [`RESYNC_EVERY`]: how an unreachable peer is tried again (an attempt that
//! fails reads nothing).

use std::{
    sync::atomic::{AtomicU8, Ordering},
    time::{Duration, Instant},
};

/// How often a folder whose document changes reconciles (see the module docs).
pub(super) const RESYNC_EVERY: Duration = Duration::from_secs(10);

/// How often a quiet one does.
pub(super) const RESYNC_QUIET: Duration = Duration::from_secs(300);

/// See the module docs.
pub(super) struct Resync {
    /// How many more ticks reconcile with every peer because the document changed, or a peer
    /// connected.
    stirred: AtomicU8,
    last: std::sync::Mutex<Instant>,
}

impl Resync {
    /// A folder that has just synced (joining and starting do).
    pub(super) fn new(now: Instant) -> Resync {
        Resync {
            stirred: AtomicU8::new(0),
            last: std::sync::Mutex::new(now),
        }
    }

    /// The document changed, or a peer connected.
    pub(super) fn stir(&self) {
        self.stirred.store(2, Ordering::Relaxed);
    }

    /// Asked every [`RESYNC_EVERY`]: whether to reconcile with every peer now (then counted
    /// as done); if not, only with the peers that may be unreachable (`Swarm::unreached`).
    pub(super) fn due(&self, now: Instant) -> bool {
        let mut last = self.last.lock().expect("resync lock");
        let stirred = self
            .stirred
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        let due = stirred || now.saturating_duration_since(*last) >= RESYNC_QUIET;
        if due {
            *last = now;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_folder_reconciles_every_few_minutes_a_changing_one_every_tick_and_once_more() {
        let t0 = Instant::now();
        let r = Resync::new(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!r.due(at(10)), "quiet: not yet");
        assert!(!r.due(at(290)));
        assert!(r.due(at(300)), "quiet, but it has been five minutes");
        assert!(!r.due(at(310)));
        r.stir();
        assert!(r.due(at(320)), "the document changed");
        r.stir();
        assert!(r.due(at(330)), "and changes");
        assert!(r.due(at(340)), "once more after the last change");
        assert!(!r.due(at(350)), "then quiet");
    }
}
