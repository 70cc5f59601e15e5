//! When a folder reconciles its document with its peers again. iroh-docs syncs when a peer
//! joins and then relies on gossip, which drops what a slow subscriber has not taken and
//! misses entries inserted while its mesh forms: a reconciliation finds those. But each one
//! has both sides read every entry of the document (iroh-docs 0.101 computes a range's
//! fingerprint entry by entry), so in a folder of 100,000 files one every 10 s was most of
//! what an idle daemon did. A reconciliation is symmetric: whichever side had its entries
//! missed, the side that wrote them reconciles while it is writing. So a folder reconciles
//! every [`RESYNC_EVERY`] while its document changes (an entry written here or arriving, a
//! peer connecting) and once more after the last change (a sync asked for while one with that
//! peer runs is dropped by iroh-docs), otherwise with all its peers every [`RESYNC_QUIET`];
//! and with the peers that may be unreachable (not connected in gossip, not reconciled with
//! lately) every [`RESYNC_EVERY`]: how an unreachable peer is tried again (an attempt that
//! fails reads nothing).
//!
//! After a change, only the peers with which no reconciliation *begun after the change* has
//! finished are reconciled with: one begun later holds the change, whichever side asked for it.
//! Both sides of a change are stirred (the writer by its own entry, the other by the entry
//! arriving), and each used to reconcile with the other twice: four walks over the whole
//! document on each side for one new file, where one does.

use std::{
    sync::atomic::{AtomicU8, Ordering},
    time::{Duration, Instant, SystemTime},
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
    /// When every peer was last reconciled with, and when (by the wall clock, as iroh-docs
    /// reports a reconciliation's start) the document last changed.
    last: std::sync::Mutex<(Instant, SystemTime)>,
}

/// Whom a tick reconciles with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// Every peer: the folder has been quiet for [`RESYNC_QUIET`].
    All,
    /// The peers not reconciled with since the document changed at this time.
    ChangedAt(SystemTime),
    /// Only the peers that may be unreachable.
    Unreached,
}

impl Resync {
    /// A folder that has just synced (joining and starting do).
    pub(super) fn new(now: Instant) -> Resync {
        Resync {
            stirred: AtomicU8::new(0),
            last: std::sync::Mutex::new((now, SystemTime::UNIX_EPOCH)),
        }
    }

    /// The document changed, or a peer connected (after the change: a reconciliation that
    /// began before this call may not hold it).
    pub(super) fn stir(&self) {
        self.last.lock().expect("resync lock").1 = SystemTime::now();
        self.stirred.store(2, Ordering::Relaxed);
    }

    /// Asked every [`RESYNC_EVERY`]: with whom to reconcile now (see [`Due`]).
    pub(super) fn due(&self, now: Instant) -> Due {
        let mut last = self.last.lock().expect("resync lock");
        if now.saturating_duration_since(last.0) >= RESYNC_QUIET {
            last.0 = now;
            // What a stir asked for is part of this.
            self.stirred.store(0, Ordering::Relaxed);
            return Due::All;
        }
        let stirred = self
            .stirred
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if stirred {
            // Every peer is then reconciled with since the change, now or by a reconciliation
            // begun after it: the quiet interval starts over.
            last.0 = now;
            Due::ChangedAt(last.1)
        } else {
            Due::Unreached
        }
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
        assert_eq!(r.due(at(10)), Due::Unreached, "quiet: not yet");
        assert_eq!(r.due(at(290)), Due::Unreached);
        assert_eq!(
            r.due(at(300)),
            Due::All,
            "quiet, but it has been five minutes"
        );
        assert_eq!(r.due(at(310)), Due::Unreached);
        let before = SystemTime::now();
        r.stir();
        let Due::ChangedAt(first) = r.due(at(320)) else {
            panic!("the document changed")
        };
        assert!(first >= before, "since the change");
        r.stir();
        let Due::ChangedAt(second) = r.due(at(330)) else {
            panic!("and changes")
        };
        assert!(second >= first, "since the last change");
        assert_eq!(
            r.due(at(340)),
            Due::ChangedAt(second),
            "once more after the last change"
        );
        assert_eq!(r.due(at(350)), Due::Unreached, "then quiet");
        // Five minutes after the last reconciliation after a change, not five minutes after
        // the last one with every peer.
        assert_eq!(r.due(at(610)), Due::Unreached);
        r.stir();
        assert_eq!(r.due(at(640)), Due::All, "a stir is part of it");
        assert_eq!(r.due(at(650)), Due::Unreached, "and was taken by it");
    }
}
