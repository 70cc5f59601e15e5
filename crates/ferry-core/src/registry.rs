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
    /// Records and content of synced folders, to the folders (document ids) holding them.
    folder: HashMap<Hash, HashSet<String>>,
    /// The peers of each synced folder: the only ones served its records and content.
    members: HashMap<String, HashSet<EndpointId>>,
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
        let Some(folders) = inner.folder.get(hash) else {
            return false;
        };
        folders
            .iter()
            .any(|f| inner.members.get(f).is_some_and(|m| m.contains(peer)))
    }

    /// Serves a record or file of the synced folder `folder` to its peers. Called only for what
    /// reached the folder as its own (see [`Registry::folder_holds`]), never for a hash a peer
    /// merely named: that would let a member make this node serve another share's blob.
    pub fn allow_folder(&self, folder: &str, hash: Hash) {
        let mut inner = self.0.lock().expect("registry lock");
        if let Some(set) = inner.folder.get_mut(&hash) {
            if !set.contains(folder) {
                set.insert(folder.to_string());
            }
            return;
        }
        inner
            .folder
            .insert(hash, HashSet::from([folder.to_string()]));
    }

    /// True if `hash` reached the synced folder `folder` as its content (published from its
    /// disk, or fetched from its peers for it): only then may the folder write or serve it.
    pub fn folder_holds(&self, folder: &str, hash: &Hash) -> bool {
        self.0
            .lock()
            .expect("registry lock")
            .folder
            .get(hash)
            .is_some_and(|set| set.contains(folder))
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
        inner.folder.retain(|_, set| {
            set.remove(folder);
            !set.is_empty()
        });
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
}
