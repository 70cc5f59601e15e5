//! The work waiting for a folder's next round: what the watcher and the document's events
//! marked ([`Dirty`]), and the paths that wait for a record or content a peer has not sent
//! yet (looked at again when a peer connects, when content arrives, and after a delay that
//! grows while retrying gets none of them: [`Queue::retry_delay`]). Marking wakes the loop; a
//! round takes what was marked, up to [`ROUND_MAX`] of each kind.

use std::{collections::BTreeSet, time::Duration};

use iroh_blobs::Hash;

/// How many records, changed paths and waiting paths one round takes at most.
pub(super) const ROUND_MAX: usize = 4096;

/// The first delay before waiting paths are looked at again without an event.
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(500);

/// The longest: a thousand paths whose records no peer can send (collected by a peer's store,
/// say) are not read again twice a second forever.
pub(super) const RETRY_MAX: Duration = Duration::from_secs(30);

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

/// See the module docs. Its locks are never held across an await; `wanted` is taken before
/// `retry` and `dirty`, which are leaves.
pub(super) struct Queue {
    dirty: std::sync::Mutex<Dirty>,
    /// Woken when `dirty` gains something.
    wake: tokio::sync::Notify,
    wanted: std::sync::Mutex<BTreeSet<String>>,
    /// See [`Queue::retry_delay`].
    retry: std::sync::Mutex<Duration>,
}

impl Queue {
    /// The queue of a folder that starts with a full pass, at once.
    pub(super) fn starting() -> Queue {
        let queue = Queue {
            dirty: std::sync::Mutex::new(Dirty {
                full: true,
                ..Default::default()
            }),
            wake: tokio::sync::Notify::new(),
            wanted: Default::default(),
            retry: std::sync::Mutex::new(RETRY_FIRST),
        };
        queue.wake.notify_one();
        queue
    }

    /// Adds work for the next round and wakes the loop.
    pub(super) fn mark(&self, f: impl FnOnce(&mut Dirty)) {
        f(&mut self.dirty.lock().expect("dirty lock"));
        self.wake.notify_one();
    }

    /// The work marked so far, for a round: everything, but at most [`ROUND_MAX`] records (the
    /// oldest), [`ROUND_MAX`] changed paths and [`ROUND_MAX`] paths to read again (the first
    /// by name; a path marked again while it waits is not marked twice); what is left stays
    /// for the next round, which runs at once. A first sync of a million files is many rounds that each write what they
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
        dirty.disk = beyond(&mut work.disk, ROUND_MAX);
        dirty.keys = beyond(&mut work.keys, ROUND_MAX);
        if !dirty.is_empty() {
            self.wake.notify_one();
        }
        work
    }

    /// Resolves once something was marked (at once if it was since the last call).
    pub(super) async fn marked(&self) {
        self.wake.notified().await
    }

    /// True when local changes (the watcher's, or a full pass) are marked.
    pub(super) fn local_marked(&self) -> bool {
        let dirty = self.dirty.lock().expect("dirty lock");
        dirty.full || !dirty.disk.is_empty()
    }

    /// True while some paths wait for a peer or for content.
    pub(super) fn waiting(&self) -> bool {
        !self.wanted.lock().expect("wanted lock").is_empty()
    }

    /// How long after the last retry the waiting paths are looked at again without an event:
    /// [`RETRY_FIRST`], doubled after each round that got none of them, up to [`RETRY_MAX`].
    pub(super) fn retry_delay(&self) -> Duration {
        *self.retry.lock().expect("retry lock")
    }

    /// Something that may bring what the waiting paths need happened (a peer connected):
    /// the next retries come at the first delay again.
    pub(super) fn retry_soon(&self) {
        *self.retry.lock().expect("retry lock") = RETRY_FIRST;
        self.retry_wanted();
    }

    /// Marks again the paths that wait for a peer or for content, unless some marked before
    /// are still queued: those are read first (a round takes the first by name, and marking
    /// all again each time would read the first ones over and over, never the last).
    pub(super) fn retry_wanted(&self) {
        let wanted = self.wanted.lock().expect("wanted lock");
        if wanted.is_empty() {
            return;
        }
        let mut dirty = self.dirty.lock().expect("dirty lock");
        if dirty.keys.is_empty() {
            dirty.keys.extend(wanted.iter().cloned());
            drop(dirty);
            self.wake.notify_one();
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
        let (mut looked, mut got) = (false, false);
        for rel in seen {
            if wanted.remove(rel) {
                looked = true;
                got |= !unavailable.contains(rel);
            }
        }
        wanted.extend(unavailable);
        let mut retry = self.retry.lock().expect("retry lock");
        if got || wanted.is_empty() {
            *retry = RETRY_FIRST;
        } else if looked {
            *retry = (*retry * 2).min(RETRY_MAX);
        }
        wanted.clone()
    }
}

/// Removes from `set` and returns what comes after its first `n` paths by name.
fn beyond(set: &mut BTreeSet<String>, n: usize) -> BTreeSet<String> {
    match set.iter().nth(n).cloned() {
        Some(first) => set.split_off(&first),
        None => BTreeSet::new(),
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

    /// The first pass is not left to some timer: the loop is woken for it.
    #[tokio::test]
    async fn a_starting_queue_wakes_the_loop_for_its_first_pass() {
        let q = Queue::starting();
        tokio::time::timeout(Duration::from_secs(5), q.marked())
            .await
            .expect("woken");
        assert!(q.take().full);
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

    #[test]
    fn retries_that_get_nothing_come_less_and_less_often_until_one_does() {
        let q = Queue::starting();
        q.take();
        let y = || ["y".to_string()];
        q.settle(&[], y().into());
        let mut delays = vec![q.retry_delay()];
        for _ in 0..8 {
            q.retry_wanted();
            let work = q.take();
            q.settle(&work.keys, y().into());
            delays.push(q.retry_delay());
        }
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert!(delays[1] > RETRY_FIRST, "{delays:?}");
        assert_eq!(delays.last(), Some(&RETRY_MAX), "bounded: {delays:?}");
        // A round that gets a waiting path.
        q.settle(&y(), BTreeSet::new());
        assert_eq!(q.retry_delay(), RETRY_FIRST);
        // Rounds that look at no waiting path leave the delay as it is.
        q.settle(&[], y().into());
        q.settle(&["other".to_string()], y().into());
        assert_eq!(q.retry_delay(), RETRY_FIRST);
        // A peer connecting.
        q.settle(&y(), y().into());
        q.settle(&y(), y().into());
        assert!(q.retry_delay() > RETRY_FIRST);
        q.retry_soon();
        assert_eq!(q.retry_delay(), RETRY_FIRST);
        assert_eq!(q.take().keys.len(), 1, "and looked at again at once");
    }

    #[test]
    fn a_round_reads_a_bounded_share_of_the_waiting_paths() {
        let q = Queue::starting();
        q.take();
        let many: BTreeSet<String> = (0..ROUND_MAX + 3).map(|i| format!("w{i:06}")).collect();
        q.settle(&[], many);
        q.retry_wanted();
        assert_eq!(q.take().keys.len(), ROUND_MAX);
        // A retry meanwhile does not put the first ones back ahead of the rest.
        q.retry_wanted();
        assert_eq!(q.take().keys.len(), 3, "the rest in the next round");
        q.retry_wanted();
        assert_eq!(q.take().keys.len(), ROUND_MAX, "then from the first again");
    }
}
