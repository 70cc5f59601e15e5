//! Serving a received share on: once a receive has saved its files, a node that does so
//! (`ferry receive --seed`, the app unless its setting is off; [`Node::set_keep_serving`])
//! serves them to the share's other receivers while the sender still shares the root.
//!
//! The saved files are added by reference to a store of their own, `<home>/kept/<root>`
//! (outboards only, no second copy, except files of 16 KiB or less, which the store copies
//! into its database; removed when serving ends, and at every start), hashed again on the way: a file that no longer holds what was received is not served, nor is the
//! share. The seed then runs like a helper's ([`crate::seed`]) but greets the sender with
//! `Greet::WhileShared`: it ends when the sender says it no longer shares the root, or has
//! been out of reach for [`crate::seed::SENDER_GONE_AFTER`].
//!
//! The files stay the user's: they may be edited, replaced or deleted while served. Before a
//! get or observe request is answered, the files behind the asked hash must still be as they were when
//! they were hashed (length, modification time, inode); if not, the request is refused and
//! the share is no longer served. (An edit in place that starts while a request is being
//! answered can still reach that one peer: its bytes fail the file's hash there.)
//!
//! Each root has one slot: preparing (hashing), then serving. A slot ends when the sender stops
//! sharing, a file changes, the setting is turned off or the node stops; a preparation whose
//! slot ended meanwhile throws its seed away.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use iroh_blobs::{
    api::blobs::{AddPathOptions, ImportMode},
    BlobFormat, Hash,
};
use tokio::sync::{mpsc, watch};

use crate::{
    error::{Error, Result},
    node::Node,
    seed::{Greet, Seed, Serve},
    ticket::Ticket,
    transfer_store::TransferStore,
};

/// Where the stores of received shares served on live, under the home.
const KEPT_DIR: &str = "kept";

/// A share received here, to serve on from where its files were saved.
pub(crate) struct Received {
    /// The share's ticket (its sender's address).
    pub ticket: Ticket,
    /// The blobs of the share that are not files (the hash seq, the names), as received.
    pub meta: Vec<bytes::Bytes>,
    /// Every file: where it was saved, and its content.
    pub files: Vec<(PathBuf, Hash)>,
    /// The payload size of each file, in the share's order.
    pub sizes: Vec<u64>,
}

/// A saved file as it was when it was hashed again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::symlink_metadata(path).ok()?;
        if !m.is_file() {
            return None;
        }
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        })
    }
}

/// The files behind each hash of a share served on, as they were when hashed.
struct Stamps {
    root: Hash,
    by_hash: HashMap<Hash, Vec<(PathBuf, Stamp)>>,
}

impl Stamps {
    /// True if every file behind `hash` (every file, for the root) is as it was.
    fn unchanged(&self, hash: &Hash) -> bool {
        let same = |files: &Vec<(PathBuf, Stamp)>| {
            files
                .iter()
                .all(|(path, stamp)| Stamp::of(path).as_ref() == Some(stamp))
        };
        if *hash == self.root {
            self.by_hash.values().all(same)
        } else {
            self.by_hash.get(hash).is_none_or(same)
        }
    }
}

enum Slot {
    Preparing(u64),
    /// Held to keep it served: dropping the seed stops serving.
    Serving {
        token: u64,
        _seed: Box<Seed>,
    },
}

#[derive(Default)]
struct Slots {
    next: u64,
    /// Set when the node stops: nothing is prepared any more.
    closed: bool,
    slots: HashMap<Hash, Slot>,
}

/// The received shares this node serves on, or prepares to, by root; `changed` ticks when one
/// starts or ends.
#[derive(Default, Clone)]
pub(crate) struct Kept {
    slots: Arc<Mutex<Slots>>,
    changed: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.lock().expect("kept lock").slots.len();
        f.debug_struct("Kept").field("shares", &n).finish()
    }
}

impl Kept {
    /// A slot for preparing `root`; `None` if it has one already, or the node stops.
    fn reserve(&self, root: Hash) -> Option<u64> {
        let mut s = self.slots.lock().expect("kept lock");
        if s.closed || s.slots.contains_key(&root) {
            return None;
        }
        s.next += 1;
        let token = s.next;
        s.slots.insert(root, Slot::Preparing(token));
        drop(s);
        self.changed.send_replace(());
        Some(token)
    }

    /// Puts `seed` in the slot `token` of `root`; gives it back if that slot has ended.
    fn fill(&self, root: Hash, token: u64, seed: Seed) -> Option<Seed> {
        let mut s = self.slots.lock().expect("kept lock");
        match s.slots.get(&root) {
            Some(Slot::Preparing(t)) if *t == token => {
                s.slots.insert(
                    root,
                    Slot::Serving {
                        token,
                        _seed: Box::new(seed),
                    },
                );
                drop(s);
                self.changed.send_replace(());
                None
            }
            _ => Some(seed),
        }
    }

    /// Ends the slot `token` of `root` (a later slot of the same root stays).
    fn end(&self, root: Hash, token: u64) {
        self.ender(root, token)();
    }

    /// What ends the slot `token` of `root` from a seed's own tasks and checks: it holds the
    /// slots weakly, since the slots hold the seed (a strong hold would keep a seed of a node
    /// dropped without shutting down alive until its sender stops sharing).
    fn ender(&self, root: Hash, token: u64) -> impl Fn() + Send + Sync + 'static {
        let (slots, changed) = (Arc::downgrade(&self.slots), self.changed.clone());
        move || {
            let Some(slots) = slots.upgrade() else {
                return;
            };
            let mut s = slots.lock().expect("kept lock");
            let mine = match s.slots.get(&root) {
                Some(Slot::Preparing(t)) | Some(Slot::Serving { token: t, .. }) => *t == token,
                None => false,
            };
            // Dropped outside the lock: dropping a seed closes its store.
            let slot = if mine { s.slots.remove(&root) } else { None };
            drop(s);
            drop(slot);
            changed.send_replace(());
        }
    }

    fn serving(&self, root: &Hash) -> bool {
        matches!(
            self.slots.lock().expect("kept lock").slots.get(root),
            Some(Slot::Serving { .. })
        )
    }

    fn busy(&self, root: &Hash) -> bool {
        self.slots
            .lock()
            .expect("kept lock")
            .slots
            .contains_key(root)
    }

    /// Ends every slot; with `close`, for good (the node stops).
    pub(crate) fn clear(&self, close: bool) {
        let mut s = self.slots.lock().expect("kept lock");
        s.closed |= close;
        let all = std::mem::take(&mut s.slots);
        drop(s);
        drop(all);
        self.changed.send_replace(());
    }
}

/// Removes what an earlier run left of the stores of shares served on (they are made anew).
pub(crate) fn clean(home: &Path) {
    std::fs::remove_dir_all(home.join(KEPT_DIR)).ok();
}

impl Node {
    /// Serves a share just received on (in the background; see the module docs), if
    /// `explicit` says so or, without it, if the node does so now.
    pub(crate) fn keep_serving(&self, received: Received, explicit: Option<bool>) {
        let on = explicit.unwrap_or_else(|| {
            self.inner
                .keep_serving
                .load(std::sync::atomic::Ordering::Relaxed)
        });
        let root = received.ticket.blob_ticket().hash();
        let Some(token) = on.then(|| self.inner.kept.reserve(root)).flatten() else {
            return;
        };
        let node = self.clone();
        tokio::spawn(async move {
            match node.prepare(received, token).await {
                Ok(seed) => {
                    if node.inner.kept.fill(root, token, seed).is_none() {
                        tracing::info!(
                            "serving received share {} to its other receivers",
                            root.fmt_short()
                        );
                    }
                }
                Err(e) => {
                    tracing::info!("not serving received share {}: {e}", root.fmt_short());
                    node.inner.kept.end(root, token);
                }
            }
        });
    }

    /// Hashes the saved files into a store of their own and starts serving it.
    async fn prepare(&self, r: Received, token: u64) -> Result<Seed> {
        let root = r.ticket.blob_ticket().hash();
        let dir = self.home().join(KEPT_DIR).join(root.to_hex());
        // Whatever an earlier run left there is made anew.
        std::fs::remove_dir_all(&dir).ok();
        let mut transfer = TransferStore::open_dir(dir).await?;
        // References to the saved files and their outboards: nothing to keep afterwards.
        transfer.remove_when_dropped();
        let store = transfer.store().clone();
        for bytes in r.meta {
            store.add_bytes(bytes).await.map_err(Error::store)?;
        }
        let mut by_hash: HashMap<Hash, Vec<(PathBuf, Stamp)>> = HashMap::new();
        for (path, expected) in &r.files {
            // The store refers to files by absolute path.
            let path = &std::path::absolute(path).map_err(|e| Error::write(path, e))?;
            let changed =
                || Error::Transfer(format!("{} changed since it was received", path.display()));
            let stamp = Stamp::of(path).ok_or_else(changed)?;
            let tt = store
                .add_path_with_opts(AddPathOptions {
                    path: path.clone(),
                    format: BlobFormat::Raw,
                    mode: ImportMode::TryReference,
                })
                .temp_tag()
                .await
                .map_err(Error::store)?;
            // Changed before or while it was hashed: not what was received.
            if tt.hash() != *expected || Stamp::of(path).as_ref() != Some(&stamp) {
                return Err(changed());
            }
            by_hash
                .entry(*expected)
                .or_default()
                .push((path.clone(), stamp));
        }
        let stamps = Stamps { root, by_hash };
        let end = self.inner.kept.ender(root, token);
        let check = Arc::new(move |hash: &Hash| {
            let ok = stamps.unchanged(hash);
            if !ok {
                tracing::info!(
                    "a file of received share {} changed: no longer serving it",
                    root.fmt_short()
                );
                end();
            }
            ok
        });
        let end = self.inner.kept.ender(root, token);
        let how = Serve {
            greet: Greet::WhileShared,
            on_end: Some(Box::new(end)),
            check: Some(check),
        };
        let (events, _) = mpsc::unbounded_channel();
        self.serve_seed(&r.ticket, transfer, r.sizes, events, how)
            .await
    }

    /// True while this node serves the received share `root` on.
    pub fn serves_received(&self, root: &Hash) -> bool {
        self.inner.kept.serving(root)
    }

    /// Waits while this node prepares to serve, or serves, the received share `root`:
    /// returns once it does neither (the sender stopped sharing it, a file changed, it could
    /// not be served, or serving was turned off).
    pub async fn received_served(&self, root: &Hash) {
        let mut changed = self.inner.kept.changed.subscribe();
        while self.inner.kept.busy(root) {
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops serving every received share (the setting was turned off).
    pub fn stop_serving_received(&self) {
        self.inner.kept.clear(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_in_any_way_is_not_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"first").unwrap();
        std::fs::write(&b, b"second").unwrap();
        let (ha, hb, root) = (
            Hash::new(b"first"),
            Hash::new(b"second"),
            Hash::new(b"root"),
        );
        let stamps = Stamps {
            root,
            by_hash: HashMap::from([
                (ha, vec![(a.clone(), Stamp::of(&a).unwrap())]),
                (hb, vec![(b.clone(), Stamp::of(&b).unwrap())]),
            ]),
        };
        assert!(stamps.unchanged(&ha) && stamps.unchanged(&hb) && stamps.unchanged(&root));
        // Replaced by another file (an editor's save-by-rename), same length.
        let tmp = dir.path().join("tmp");
        std::fs::write(&tmp, b"FIRST").unwrap();
        std::fs::rename(&tmp, &a).unwrap();
        assert!(!stamps.unchanged(&ha));
        assert!(
            stamps.unchanged(&hb),
            "only the files behind the asked hash count"
        );
        assert!(!stamps.unchanged(&root), "the root stands for every file");
        // Gone.
        std::fs::remove_file(&b).unwrap();
        assert!(!stamps.unchanged(&hb));
    }
}
