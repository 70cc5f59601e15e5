//! The work waiting for a folder's next round: what the watcher and the document's events
//! marked ([`Dirty`]), and the paths that wait for a record or content a peer has not sent
//! yet (looked at again when a peer connects, when content arrives, and shortly after each
//! round that left them). Marking wakes the loop; a round takes everything marked at once.

use std::collections::BTreeSet;

use iroh_blobs::Hash;

/// How many records, and how many changed paths, one round takes at most.
pub(super) const ROUND_MAX: usize = 4096;

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

    /// The work marked so far, for a round: everything, but at most [`ROUND_MAX`] records (the
    /// oldest) and [`ROUND_MAX`] changed paths (the first by name; a path marked again while
    /// it waits is not marked twice); what is left stays for the next round, which
    /// runs at once. A first sync of a million files is many rounds that each write what they
    /// read, not one that reads everything before writing anything.
    pub(super) fn take(&self) -> Dirty {
        let mut dirty = self.dirty.lock().expect("dirty lock");
        let mut work = std::mem::take(&mut *dirty);
        // A full pass reads every record and looks at every file anyway.
        if work.full {
            return work;
        }
        if work.records.len() > ROUND_MAX {
            dirty.records = work.records.split_off(ROUND_MAX);
        }
        if work.disk.len() > ROUND_MAX {
            let after = work
                .disk
                .iter()
                .nth(ROUND_MAX)
                .expect("more than that")
                .clone();
            dirty.disk = work.disk.split_off(&after);
        }
        if !dirty.is_empty() {
            self.wake.notify_one();
        }
        work
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

    #[tokio::test]
    async fn a_round_takes_a_bounded_share_and_the_next_round_the_rest_in_order() {
        let q = Queue::starting();
        q.take();
        let n = ROUND_MAX + 10;
        q.mark(|d| {
            d.records = (0..n)
                .map(|i| (format!("r{i:06}"), Hash::new([0])))
                .collect();
            d.disk = (0..n).map(|i| format!("d{i:06}")).collect();
        });
        q.marked().await;
        let first = q.take();
        assert_eq!(first.records.len(), ROUND_MAX);
        assert_eq!(first.disk.len(), ROUND_MAX);
        assert_eq!(first.records[0].0, "r000000", "the oldest records first");
        assert_eq!(first.disk.first().map(String::as_str), Some("d000000"));
        // The rest wakes the loop again at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), q.marked())
            .await
            .expect("woken for the rest");
        let rest = q.take();
        assert_eq!(rest.records.len(), 10);
        assert_eq!(rest.records[0].0, format!("r{ROUND_MAX:06}"));
        assert_eq!(rest.disk.len(), 10);
        assert_eq!(rest.disk.first(), Some(&format!("d{ROUND_MAX:06}")));
        assert!(q.take().is_empty());
        // A full pass takes everything: it reads every record anyway.
        q.mark(|d| {
            d.full = true;
            d.disk = (0..n).map(|i| format!("d{i:06}")).collect();
        });
        assert_eq!(q.take().disk.len(), n);
        assert!(q.take().is_empty());
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
