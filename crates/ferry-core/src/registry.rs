//! The set of live shares: which hashes may be served, and where a share's peer events go.
//!
//! iroh-blobs serves every blob in the store to anyone by default. Ferry's provider only serves
//! what a live share offers (see [`crate::access`]); this registry is the source of truth for
//! that decision. Dropping a share's [`ShareGuard`] removes it at once.
//!
//! A hash is served only in the context the peer was given. A one-shot share's blobs go to a
//! peer that has asked for that share's root (the ticket is the root: knowing it is the
//! capability), not to whoever names one of its hashes: the holder of one ticket learns
//! nothing about another live share, not even whether this node holds its files. A folder's
//! records and content go to that folder's members only.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use iroh::EndpointId;
use iroh_blobs::Hash;
use tokio::sync::mpsc;

use crate::progress::ShareEvent;

#[derive(Debug)]
struct Entry {
    root: Hash,
    hashes: HashSet<Hash>,
    /// Payload sizes of the children, by child index (1-based in the hash seq; 0 is the meta).
    sizes: Vec<u64>,
    events: mpsc::UnboundedSender<ShareEvent>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    shares: HashMap<u64, Entry>,
    /// Roots of live shares, to the share ids offering them.
    roots: HashMap<Hash, Vec<u64>>,
    /// The live roots each peer has asked for: the shares whose blobs it may fetch.
    opened: HashMap<EndpointId, HashSet<Hash>>,
    /// Synced folders' document ids, by slot: the maps below name a folder by its slot, four
    /// bytes per hash rather than a string and a set of its own (a folder of a million files
    /// has two million hashes here).
    folder_slots: Vec<String>,
    /// Records and content of synced folders, to the first folder that held them.
    folder: HashMap<Hash, u32>,
    /// Further folders holding a hash another folder holds too (the same content in two
    /// folders: rare).
    folder_more: HashMap<Hash, Vec<u32>>,
    /// The peers of each synced folder: the only ones served its records and content.
    members: HashMap<String, HashSet<EndpointId>>,
}

impl Inner {
    /// The slot of `folder`, given one if it has none.
    fn slot(&mut self, folder: &str) -> u32 {
        if let Some(slot) = self.slot_of(folder) {
            return slot;
        }
        self.folder_slots.push(folder.to_string());
        u32::try_from(self.folder_slots.len() - 1).expect("fewer than 2^32 folders")
    }

    fn slot_of(&self, folder: &str) -> Option<u32> {
        let i = self.folder_slots.iter().position(|f| f == folder)?;
        Some(i as u32)
    }

    /// The slots of the folders holding `hash`.
    fn folders_of(&self, hash: &Hash) -> impl Iterator<Item = u32> + '_ {
        let more = self.folder_more.get(hash).map(Vec::as_slice).unwrap_or(&[]);
        self.folder
            .get(hash)
            .copied()
            .into_iter()
            .chain(more.iter().copied())
    }
}

/// Shared registry of live shares.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<Mutex<Inner>>);

/// What the provider needs to know about one share for progress reporting.
#[derive(Debug, Clone)]
pub struct ShareView {
    /// Child sizes by hash-seq index (index 0 is the collection metadata).
    pub sizes: Vec<u64>,
    /// Where the share's events go.
    pub events: mpsc::UnboundedSender<ShareEvent>,
}

impl Registry {
    /// Registers a share. `hashes` must hold the root, the metadata blob and every child.
    pub fn add(
        &self,
        root: Hash,
        hashes: Vec<Hash>,
        sizes: Vec<u64>,
        events: mpsc::UnboundedSender<ShareEvent>,
    ) -> ShareGuard {
        let mut inner = self.0.lock().expect("registry lock");
        inner.next_id += 1;
        let id = inner.next_id;
        inner.roots.entry(root).or_default().push(id);
        inner.shares.insert(
            id,
            Entry {
                root,
                hashes: hashes.into_iter().collect(),
                sizes,
                events,
            },
        );
        ShareGuard {
            registry: self.clone(),
            id,
        }
    }

    fn remove(&self, id: u64) {
        let mut inner = self.0.lock().expect("registry lock");
        let Some(entry) = inner.shares.remove(&id) else {
            return;
        };
        if let Some(ids) = inner.roots.get_mut(&entry.root) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                inner.roots.remove(&entry.root);
                // Nobody may fetch from a share that stopped, also on an open connection.
                inner.opened.retain(|_, roots| {
                    roots.remove(&entry.root);
                    !roots.is_empty()
                });
            }
        }
    }

    /// Is `root` the root of a live share? If so, `peer` has shown it holds the ticket and may
    /// fetch that share's blobs from now on (until the share stops or the peer disconnects).
    pub fn open_root(&self, root: &Hash, peer: Option<&EndpointId>) -> bool {
        let mut inner = self.0.lock().expect("registry lock");
        if !inner.roots.contains_key(root) {
            return false;
        }
        if let Some(peer) = peer {
            inner.opened.entry(*peer).or_default().insert(*root);
        }
        true
    }

    /// The roots `peer` has opened.
    pub fn opened_by(&self, peer: &EndpointId) -> HashSet<Hash> {
        let inner = self.0.lock().expect("registry lock");
        inner.opened.get(peer).cloned().unwrap_or_default()
    }

    /// Forgets which shares `peer` opened: its last connection closed.
    pub fn forget_peer(&self, peer: &EndpointId) {
        self.0.lock().expect("registry lock").opened.remove(peer);
    }

    /// May this blob be served on its own to `peer`? A blob of a live share only to a peer that
    /// opened that share's root; records and content of a synced folder only to that folder's
    /// members.
    pub fn allows_blob(&self, hash: &Hash, peer: Option<&EndpointId>) -> bool {
        let inner = self.0.lock().expect("registry lock");
        let Some(peer) = peer else {
            return false;
        };
        let in_share = inner.opened.get(peer).is_some_and(|roots| {
            roots.iter().any(|root| {
                inner.roots.get(root).is_some_and(|ids| {
                    ids.iter().any(|id| {
                        inner
                            .shares
                            .get(id)
                            .is_some_and(|e| e.hashes.contains(hash))
                    })
                })
            })
        });
        if in_share {
            return true;
        }
        let member = inner.folders_of(hash).any(|slot| {
            inner
                .members
                .get(&inner.folder_slots[slot as usize])
                .is_some_and(|m| m.contains(peer))
        });
        member
    }

    /// Serves a record or file of the synced folder `folder` to its peers. Called only for what
    /// reached the folder as its own (see [`Registry::folder_holds`]), never for a hash a peer
    /// merely named: that would let a member make this node serve another share's blob.
    pub fn allow_folder(&self, folder: &str, hash: Hash) {
        let mut inner = self.0.lock().expect("registry lock");
        let slot = inner.slot(folder);
        let first = *inner.folder.entry(hash).or_insert(slot);
        if first != slot {
            let more = inner.folder_more.entry(hash).or_default();
            if !more.contains(&slot) {
                more.push(slot);
            }
        }
    }

    /// True if `hash` reached the synced folder `folder` as its content (published from its
    /// disk, or fetched from its peers for it): only then may the folder write or serve it.
    pub fn folder_holds(&self, folder: &str, hash: &Hash) -> bool {
        let inner = self.0.lock().expect("registry lock");
        let Some(slot) = inner.slot_of(folder) else {
            return false;
        };
        let held = inner.folders_of(hash).any(|s| s == slot);
        held
    }

    /// Records `peer` as a peer of the synced folder `folder`.
    pub fn add_member(&self, folder: &str, peer: EndpointId) {
        self.0
            .lock()
            .expect("registry lock")
            .members
            .entry(folder.to_string())
            .or_default()
            .insert(peer);
    }

    /// Stops serving a folder that this node left.
    pub fn remove_folder(&self, folder: &str) {
        let mut inner = self.0.lock().expect("registry lock");
        inner.members.remove(folder);
        let Some(slot) = inner.slot_of(folder) else {
            return;
        };
        inner.folder_more.retain(|_, more| {
            more.retain(|s| *s != slot);
            !more.is_empty()
        });
        let mut orphans = Vec::new();
        inner.folder.retain(|hash, first| {
            let keep = *first != slot;
            if !keep {
                orphans.push(*hash);
            }
            keep
        });
        // A hash another folder holds too stays, under that folder.
        for hash in orphans {
            let Some(more) = inner.folder_more.get_mut(&hash) else {
                continue;
            };
            let next = more.pop().expect("never left empty");
            if more.is_empty() {
                inner.folder_more.remove(&hash);
            }
            inner.folder.insert(hash, next);
        }
    }

    /// The newest live share with this root, for progress reporting.
    pub fn view(&self, root: &Hash) -> Option<ShareView> {
        let inner = self.0.lock().expect("registry lock");
        let id = *inner.roots.get(root)?.last()?;
        let e = inner.shares.get(&id)?;
        Some(ShareView {
            sizes: e.sizes.clone(),
            events: e.events.clone(),
        })
    }

    /// Number of live shares.
    pub fn len(&self) -> usize {
        self.0.lock().expect("registry lock").shares.len()
    }

    /// True when nothing is shared.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a share registered; dropping it stops the share.
#[derive(Debug)]
pub struct ShareGuard {
    registry: Registry,
    id: u64,
}

impl ShareGuard {
    /// The share's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for ShareGuard {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> EndpointId {
        iroh::SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn dropping_the_guard_revokes() {
        let r = Registry::default();
        let (tx, _rx) = mpsc::unbounded_channel();
        let root = Hash::new(b"root");
        let child = Hash::new(b"child");
        let p = peer(1);
        let g1 = r.add(root, vec![root, child], vec![0, 1], tx.clone());
        let g2 = r.add(root, vec![root, child], vec![0, 1], tx);
        assert!(r.open_root(&root, Some(&p)) && r.allows_blob(&child, Some(&p)));
        assert!(
            !r.open_root(&child, Some(&p)),
            "a child is never served as a collection"
        );
        drop(g1);
        assert!(
            r.allows_blob(&child, Some(&p)),
            "still offered by the second share"
        );
        drop(g2);
        assert!(!r.allows_blob(&child, Some(&p)) && !r.open_root(&root, Some(&p)));
        assert!(r.is_empty());
    }

    #[test]
    fn a_share_is_served_only_to_peers_that_opened_it() {
        let r = Registry::default();
        let (tx, _rx) = mpsc::unbounded_channel();
        let (root_a, file_a) = (Hash::new(b"root a"), Hash::new(b"file a"));
        let (root_b, file_b) = (Hash::new(b"root b"), Hash::new(b"file b"));
        let _a = r.add(root_a, vec![root_a, file_a], vec![0, 1], tx.clone());
        let _b = r.add(root_b, vec![root_b, file_b], vec![0, 1], tx);
        let (alice, bob) = (peer(1), peer(2));
        assert!(!r.allows_blob(&file_a, Some(&alice)), "not before the root");
        assert!(r.open_root(&root_a, Some(&alice)));
        assert!(r.allows_blob(&file_a, Some(&alice)));
        assert!(
            !r.allows_blob(&file_b, Some(&alice)),
            "another share's file"
        );
        assert!(!r.allows_blob(&file_a, Some(&bob)), "another peer");
        assert!(!r.allows_blob(&file_a, None));
        r.forget_peer(&alice);
        assert!(!r.allows_blob(&file_a, Some(&alice)), "after disconnecting");
    }

    /// Hashes are kept by folder slot; one held by two folders is served to the members of
    /// each, and stays with the other when one folder is left.
    #[test]
    fn a_folder_hash_is_served_to_that_folders_members_only() {
        let r = Registry::default();
        let (alice, bob) = (peer(1), peer(2));
        r.add_member("one", alice);
        r.add_member("two", bob);
        let (own, shared) = (Hash::new(b"one's"), Hash::new(b"both"));
        r.allow_folder("one", own);
        r.allow_folder("one", shared);
        r.allow_folder("two", shared);
        r.allow_folder("two", shared);
        assert!(r.folder_holds("one", &own) && !r.folder_holds("two", &own));
        assert!(r.folder_holds("one", &shared) && r.folder_holds("two", &shared));
        assert!(!r.folder_holds("three", &own), "an unknown folder");
        assert!(r.allows_blob(&own, Some(&alice)) && !r.allows_blob(&own, Some(&bob)));
        assert!(r.allows_blob(&shared, Some(&alice)) && r.allows_blob(&shared, Some(&bob)));
        r.remove_folder("one");
        assert!(!r.folder_holds("one", &own) && !r.folder_holds("one", &shared));
        assert!(!r.allows_blob(&own, Some(&alice)) && !r.allows_blob(&shared, Some(&alice)));
        assert!(r.folder_holds("two", &shared) && r.allows_blob(&shared, Some(&bob)));
        // Rejoined, the folder holds nothing until its content reaches it again.
        r.add_member("one", alice);
        assert!(!r.allows_blob(&shared, Some(&alice)));
        r.allow_folder("one", own);
        assert!(r.allows_blob(&own, Some(&alice)));
    }
}
