//! The work waiting for a folder's next round: what the watcher and the document's events
//! marked ([`Dirty`]), and the paths that wait for a record or content a peer has not sent
//! yet (looked at again when a peer connects, when content arrives, and shortly after each
//! round that left them). Marking wakes the loop; a round takes everything marked at once.

use std::collections::BTreeSet;

use iroh_blobs::Hash;

/// What the next round has to look at.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    /// Paths the watcher saw change, relative to the folder.
    pub(super) disk: BTreeSet<String>,
    /// Paths to read again from the document (their records were missing before).
    pub(super) keys: BTreeSet<String>,
    /// Records that arrived from peers: path and record blob.
    pub(super) records: Vec<(String, Hash)>,
    /// Everything.
    pub(super) full: bool,
}

impl Dirty {
    pub(super) fn is_empty(&self) -> bool {
        !self.full && self.disk.is_empty() && self.keys.is_empty() && self.records.is_empty()
    }
}

/// See the module docs. Its locks are leaves: never held across an await or while taking
/// another.
pub(super) struct Queue {
    dirty: std::sync::Mutex<Dirty>,
    /// Woken when `dirty` gains something.
    wake: tokio::sync::Notify,
    wanted: std::sync::Mutex<BTreeSet<String>>,
}

impl Queue {
    /// The queue of a folder that starts with a full pass.
    pub(super) fn starting() -> Queue {
        Queue {
            dirty: std::sync::Mutex::new(Dirty {
                full: true,
                ..Default::default()
            }),
            wake: tokio::sync::Notify::new(),
            wanted: Default::default(),
        }
    }

    /// Adds work for the next round and wakes the loop.
    pub(super) fn mark(&self, f: impl FnOnce(&mut Dirty)) {
        f(&mut self.dirty.lock().expect("dirty lock"));
        self.wake.notify_one();
    }

    /// Everything marked so far, for a round; the queue is empty after.
    pub(super) fn take(&self) -> Dirty {
        std::mem::take(&mut *self.dirty.lock().expect("dirty lock"))
    }

    /// Resolves once something was marked (at once if it was since the last call).
    pub(super) async fn marked(&self) {
        self.wake.notified().await
    }

    /// Marks again the paths that wait for a peer or for content.
    pub(super) fn retry_wanted(&self) {
        let wanted = self.wanted.lock().expect("wanted lock").clone();
        if !wanted.is_empty() {
            self.mark(|d| d.keys.extend(wanted));
        }
    }

    /// A round looked at `seen` and could not get the records or content of `unavailable`:
    /// those wait now, the others no longer do. Returns what waits.
    pub(super) fn settle<'a>(
        &self,
        seen: impl IntoIterator<Item = &'a String>,
        unavailable: BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut wanted = self.wanted.lock().expect("wanted lock");
        for rel in seen {
            wanted.remove(rel);
        }
        wanted.extend(unavailable);
        wanted.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_round_takes_everything_marked_and_is_woken_by_marks() {
        let q = Queue::starting();
        assert!(q.take().full, "a folder starts with a full pass");
        assert!(q.take().is_empty());
        q.mark(|d| {
            d.disk.insert("a".into());
        });
        q.mark(|d| {
            d.disk.insert("b".into());
        });
        // The mark's wake-up is kept for the next wait.
        tokio::time::timeout(std::time::Duration::from_secs(5), q.marked())
            .await
            .expect("woken");
        let work = q.take();
        assert_eq!(work.disk.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn waiting_paths_are_retried_until_a_round_gets_them() {
        let q = Queue::starting();
        q.take();
        q.retry_wanted();
        assert!(q.take().is_empty(), "nothing waits");
        let waits = q.settle(&[], ["x".to_string(), "y".to_string()].into());
        assert_eq!(waits.len(), 2);
        q.retry_wanted();
        assert_eq!(q.take().keys.into_iter().collect::<Vec<_>>(), ["x", "y"]);
        // A round that looked at x and got it.
        let waits = q.settle(&["x".to_string()], BTreeSet::new());
        assert_eq!(waits.into_iter().collect::<Vec<_>>(), ["y"]);
    }
}
