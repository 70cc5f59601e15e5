//! When the home's blob store collects garbage.
//!
//! A collection reads every entry of every folder document (for the records they name) and
//! then every tag and every blob of the store: half a second of CPU with 100,000 files, seven
//! with a million (docs/BENCHMARKS.md, "Idle CPU"). Run every five minutes whether or not
//! anything changed, that was most of what an idle node did. So a collection runs only when
//! something may have become garbage since the last one began:
//!
//! - a tag was deleted: a received share's, or a folder's content no record names any more
//!   (a full pass lets go of the versions of files replaced or removed);
//! - a share stopped or failed (its temporary tags went with it);
//! - a folder stopped (paused or left): what only its document named is unprotected now.
//!
//! Anything else that may leave garbage behind is small, and is collected by the run that
//! comes at least every [`SAFETY_NET`] anyway, counted from the node's start: the records of
//! replaced versions (a few hundred bytes each: a folder edited all day would otherwise be
//! collected every five minutes for them, and a file written in two steps, seen half-way,
//! replaces its first record at once), an import that failed half-way, what a process that
//! ended mid-way left.
//!
//! Skipping a run never deletes anything: a wrong "not wanted" leaves garbage on disk a while
//! longer, never collects what is still used.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// The longest a node goes without a collection, wanted or not.
pub(crate) const SAFETY_NET: Duration = Duration::from_secs(3600);

/// Whether the next collection is wanted (see the module docs); shared by the parts that
/// may leave garbage and the store's collection callback.
#[derive(Debug, Clone)]
pub(crate) struct Collection(Arc<State>);

#[derive(Debug)]
struct State {
    wanted: AtomicBool,
    /// When the last collection began (at first, when the node started).
    last: Mutex<Instant>,
    runs: AtomicU64,
    ticks: AtomicU64,
}

impl Collection {
    /// The collections of a node starting at `now`.
    pub(crate) fn new(now: Instant) -> Collection {
        Collection(Arc::new(State {
            wanted: AtomicBool::new(false),
            last: Mutex::new(now),
            runs: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
        }))
    }

    /// Something may have become garbage: the next collection runs.
    pub(crate) fn wanted(&self) {
        self.0.wanted.store(true, Ordering::SeqCst);
    }

    /// A collection is about to begin at `now`: true if it should run (wanted since the last
    /// one began, or the last one, or the start, [`SAFETY_NET`] ago). What is wanted from
    /// here on is for the next one.
    pub(crate) fn begins(&self, now: Instant) -> bool {
        self.0.ticks.fetch_add(1, Ordering::Relaxed);
        let mut last = self.0.last.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = self.0.wanted.swap(false, Ordering::SeqCst);
        let run = wanted || now.saturating_duration_since(*last) >= SAFETY_NET;
        if run {
            *last = now;
            self.0.runs.fetch_add(1, Ordering::Relaxed);
        }
        run
    }

    /// How many collections have run (begun) since the node started.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> u64 {
        self.0.runs.load(Ordering::Relaxed)
    }

    /// How many times a collection was due, run or skipped.
    #[cfg(test)]
    pub(crate) fn ticks(&self) -> u64 {
        self.0.ticks.load(Ordering::Relaxed)
    }

    /// A guard that wants a collection when it is dropped (held by what keeps blobs only as
    /// long as it lives, such as a share's temporary tag).
    pub(crate) fn on_drop(&self) -> WantedOnDrop {
        WantedOnDrop(self.clone())
    }
}

/// Wants a collection when dropped (see [`Collection::on_drop`]).
#[derive(Debug)]
pub(crate) struct WantedOnDrop(Collection);

impl Drop for WantedOnDrop {
    fn drop(&mut self) {
        self.0.wanted();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Node, NodeConfig};

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// An idle node does not collect again and again (each collection reads every folder
    /// record, then every blob); what a share kept is collected once the share stops.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unchanged_store_is_not_collected_again_but_a_stopped_share_is() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::spawn(NodeConfig {
            gc_interval: Duration::from_millis(20),
            ..NodeConfig::local(dir.path().join("home"))
        })
        .await
        .unwrap();
        let c = node.inner.collection.clone();
        let file = dir.path().join("f.bin");
        std::fs::write(&file, vec![7u8; 64 * 1024]).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let share = node.share(&[file], tx).await.unwrap();
        let root: iroh_blobs::Hash = share.info().offer.hash.parse().unwrap();
        let (runs, ticks) = (c.runs(), c.ticks());
        until("five more ticks", || c.ticks() >= ticks + 5).await;
        assert_eq!(c.runs(), runs, "nothing was let go: no collection ran");
        assert_eq!(runs, 0, "nor at the start");
        assert!(node.store().has(root).await.unwrap(), "shared, so kept");
        drop(share);
        let mut gone = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !gone {
            assert!(
                Instant::now() < deadline,
                "the stopped share was never collected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            gone = !node.store().has(root).await.unwrap();
        }
        assert!(c.runs() > runs);
        node.shutdown().await.unwrap();
    }

    #[test]
    fn a_collection_runs_only_when_wanted_or_after_the_safety_net() {
        let t0 = Instant::now();
        let c = Collection::new(t0);
        assert!(!c.begins(t0 + Duration::from_secs(300)), "nothing wanted");
        c.wanted();
        assert!(c.begins(t0 + Duration::from_secs(600)), "wanted");
        assert!(
            !c.begins(t0 + Duration::from_secs(900)),
            "wanted once, run once"
        );
        drop(c.on_drop());
        assert!(c.begins(t0 + Duration::from_secs(1200)), "a guard dropped");
        assert!(!c.begins(t0 + Duration::from_secs(1200) + SAFETY_NET / 2));
        assert!(
            c.begins(t0 + Duration::from_secs(1200) + SAFETY_NET),
            "the safety net"
        );
        assert_eq!(c.runs(), 3);
        let restarted = Collection::new(t0);
        assert!(
            restarted.begins(t0 + SAFETY_NET),
            "the safety net counts from the start"
        );
    }
}
