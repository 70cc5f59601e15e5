//! The set of live shares: which hashes may be served, and where a share's peer events go.
//!
//! iroh-blobs serves every blob in the store to anyone by default. Ferry's provider only serves
//! what a live share offers (see [`crate::access`]); this registry is the source of truth for
//! that decision. Dropping a share's [`ShareGuard`] removes it at once.

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
    hashes: Vec<Hash>,
    /// Payload sizes of the children, by child index (1-based in the hash seq; 0 is the meta).
    sizes: Vec<u64>,
    events: mpsc::UnboundedSender<ShareEvent>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    shares: HashMap<u64, Entry>,
    /// How many live shares offer each hash.
    allowed: HashMap<Hash, usize>,
    /// Roots of live shares, to the share ids offering them.
    roots: HashMap<Hash, Vec<u64>>,
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
        for h in &hashes {
            *inner.allowed.entry(*h).or_default() += 1;
        }
        inner.roots.entry(root).or_default().push(id);
        inner.shares.insert(
            id,
            Entry {
                root,
                hashes,
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
        for h in &entry.hashes {
            if let Some(n) = inner.allowed.get_mut(h) {
                *n -= 1;
                if *n == 0 {
                    inner.allowed.remove(h);
                }
            }
        }
        if let Some(ids) = inner.roots.get_mut(&entry.root) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                inner.roots.remove(&entry.root);
            }
        }
    }

    /// May this blob be served on its own to `peer`? Blobs of a live share go to anyone with
    /// the ticket; records and content of a synced folder only to that folder's peers.
    pub fn allows_blob(&self, hash: &Hash, peer: Option<&EndpointId>) -> bool {
        let inner = self.0.lock().expect("registry lock");
        if inner.allowed.contains_key(hash) {
            return true;
        }
        let (Some(peer), Some(folders)) = (peer, inner.folder.get(hash)) else {
            return false;
        };
        folders
            .iter()
            .any(|f| inner.members.get(f).is_some_and(|m| m.contains(peer)))
    }

    /// Serves a record or file of the synced folder `folder` to its peers.
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

    /// May this hash be served as a hash sequence (a whole collection)?
    pub fn allows_collection(&self, root: &Hash) -> bool {
        self.0
            .lock()
            .expect("registry lock")
            .roots
            .contains_key(root)
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

    #[test]
    fn dropping_the_guard_revokes() {
        let r = Registry::default();
        let (tx, _rx) = mpsc::unbounded_channel();
        let root = Hash::new(b"root");
        let child = Hash::new(b"child");
        let g1 = r.add(root, vec![root, child], vec![0, 1], tx.clone());
        let g2 = r.add(root, vec![root, child], vec![0, 1], tx);
        assert!(r.allows_collection(&root) && r.allows_blob(&child, None));
        assert!(
            !r.allows_collection(&child),
            "a child is never served as a collection"
        );
        drop(g1);
        assert!(
            r.allows_blob(&child, None),
            "still offered by the second share"
        );
        drop(g2);
        assert!(!r.allows_blob(&child, None) && !r.allows_collection(&root));
        assert!(r.is_empty());
    }
}
