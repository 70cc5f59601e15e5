//! The versions of a folder's files that its peers may fetch from this device, kept without a
//! second copy of them.
//!
//! Peers fetch content by hash from the node's blob store. Copying every synced file into that
//! store doubled the folder's cost on disk and kept every version ever published. Instead, each
//! version a record of the folder still names has a *private name* in `.ferry/content/`, and the
//! store references that name in place (it keeps only the BLAKE3 tree, ~0.4% of the size):
//!
//! - a reflink where the file system has them (Btrfs, XFS, APFS): no space, and untouched by
//!   any later edit of the file;
//! - else a hard link: no space while the file is unchanged. An edit that writes a new file
//!   under the name (what editors, and Ferry itself, do) leaves the linked version intact; an
//!   edit in place changes it too, and then the receiver's verification refuses what is served
//!   until the edit is published, which the watcher does next;
//! - else (a file system without links) a copy in the store, as before.
//!
//! A version stops being kept when no record of the folder names it any more
//! ([`Content::prune`], on each full pass): its private name goes and the store forgets it.
//! A replaced or deleted file keeps its own name in the trash, so a trashed version costs its
//! space once. Files up to [`INLINE_MAX`] (1 KiB) are kept in the store's database itself.
//!
//! Content read back from a private name is verified before it is written into the folder: a
//! hard-linked name may have been edited in place since.

use std::{
    collections::HashSet,
    io,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering},
        Arc,
    },
};

use iroh_blobs::{
    api::{
        blobs::{AddPathOptions, ExportMode, ExportOptions, ImportMode},
        Store,
    },
    BlobFormat, Hash, HashAndFormat,
};
use n0_future::StreamExt;

use crate::{
    error::{Error, Result},
    folder::{
        ignore::{STATE_DIR, TEMP_SUFFIX},
        version::parse_hash,
    },
    registry::Registry,
};

/// Files up to this size are kept in the store's database; larger ones get a private name.
/// The node sets the store's inline limit to this (iroh-blobs' default, 16 KiB, would copy
/// every small file of a folder into the database). Records stay below it.
pub(crate) const INLINE_MAX: u64 = 1024;

/// Prefix of the store tags that keep folder content; followed by `<folder id>/<hash>`.
/// Tags named `ferry/folder/<hash>` are from before content was kept per folder.
const TAG_PREFIX: &str = "ferry/folder/";

/// The content one folder keeps for its peers. See the module docs.
#[derive(Debug, Clone)]
pub(super) struct Content {
    root: PathBuf,
    store: Store,
    registry: Registry,
    folder_id: String,
    /// Whether this folder's file system makes reflinks: not known yet, yes, or no (then
    /// only hard links are tried, saving a failed attempt per file).
    reflinks: Arc<AtomicU8>,
}

const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;

impl Content {
    pub(super) fn new(root: &Path, store: Store, registry: Registry, folder_id: &str) -> Content {
        Content {
            root: root.to_path_buf(),
            store,
            registry,
            folder_id: folder_id.to_string(),
            reflinks: Arc::new(AtomicU8::new(UNKNOWN)),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.join(STATE_DIR).join("content")
    }

    /// Where the private name of `hash` lives: `.ferry/content/<2 hex>/<hex>`.
    pub(super) fn name_of(&self, hash: &Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.dir().join(&hex[..2]).join(hex.as_str())
    }

    fn tag(&self, hash: &Hash) -> String {
        format!("{TAG_PREFIX}{}/{hash}", self.folder_id)
    }

    /// Keeps `hash`, which the store holds, as this folder's content: kept by the store and
    /// served to the folder's members.
    pub(super) async fn keep(&self, hash: Hash) -> Result<()> {
        self.store
            .tags()
            .set(self.tag(&hash), HashAndFormat::raw(hash))
            .await
            .map_err(Error::store)?;
        self.registry.allow_folder(&self.folder_id, hash);
        Ok(())
    }

    /// Tells the registry what this folder kept before it last stopped: its own content,
    /// which it may use and serve again.
    pub(super) async fn allow_kept(&self) -> Result<()> {
        for (_, hash) in self.own_tags().await? {
            self.registry.allow_folder(&self.folder_id, hash);
        }
        Ok(())
    }

    /// The tags by which this folder keeps content, with the hash each keeps.
    async fn own_tags(&self) -> Result<Vec<(iroh_blobs::api::Tag, Hash)>> {
        let own = format!("{TAG_PREFIX}{}/", self.folder_id);
        let mut tags = self
            .store
            .tags()
            .list_prefix(own.as_bytes())
            .await
            .map_err(Error::store)?;
        let mut out = Vec::new();
        while let Some(tag) = tags.next().await {
            let tag = tag.map_err(Error::store)?;
            out.push((tag.name, tag.hash));
        }
        Ok(out)
    }

    /// Adds a small blob (a block list) as this folder's content.
    pub(super) async fn keep_bytes(&self, bytes: Vec<u8>) -> Result<Hash> {
        let tt = self
            .store
            .add_bytes(bytes)
            .temp_tag()
            .await
            .map_err(Error::store)?;
        self.keep(tt.hash()).await?;
        Ok(tt.hash())
    }

    /// Keeps `data`, the whole content `hash` fetched from the folder's peers and verified,
    /// as this folder's: written once, to its private name (flushed), which the store then
    /// references. False (nothing kept) if the store does not take it as that hash.
    pub(super) async fn keep_received(&self, hash: Hash, data: Vec<u8>) -> Result<bool> {
        let name = self.name_of(&hash);
        let written = {
            let name = name.clone();
            tokio::task::spawn_blocking(move || write_private(&name, &data))
                .await
                .map_err(|e| Error::Store(e.to_string()))?
        };
        written.map_err(|e| Error::write(&name, e))?;
        self.import(name, ImportMode::TryReference, hash).await
    }

    /// Keeps the file at `path`, which held `expected` (`size` bytes) when it was hashed,
    /// servable to the folder's peers. False if it no longer holds it (it changed since: it is
    /// published again once it settles).
    pub(super) async fn keep_file(&self, path: &Path, expected: Hash, size: u64) -> Result<bool> {
        let meta = std::fs::metadata(path).map_err(|e| Error::write(path, e))?;
        // A file still being written is refused before the store sees it: imported under the
        // private name of what it held when hashed, it would leave the store naming that
        // private name, removed below, as a place of what it holds now (iroh-blobs adds a
        // referenced path to a blob's places and never drops one), and the blob unservable.
        if meta.len() != size {
            return Ok(false);
        }
        let name = self.name_of(&expected);
        if (meta.len() <= INLINE_MAX || same_file(&meta, &name))
            && self.store.has(expected).await.map_err(Error::store)?
        {
            // Already here: small content in the store itself, or kept under this name (a file
            // this device just wrote from it).
            self.keep(expected).await?;
            return Ok(true);
        }
        let (source, mode) = if meta.len() <= INLINE_MAX {
            (path.to_path_buf(), ImportMode::Copy)
        } else {
            match self.private_name(path, &name) {
                Ok(()) => (name.clone(), ImportMode::TryReference),
                Err(e) => {
                    tracing::debug!("no private name for {}: {e}", path.display());
                    (path.to_path_buf(), ImportMode::Copy)
                }
            }
        };
        self.import(source, mode, expected).await
    }

    /// Imports the file at `source` into the store (`mode`) and keeps it as this folder's if
    /// it holds `expected`. False if it does not: then `source`, if it is the private name of
    /// `expected`, goes (it names other content).
    async fn import(&self, source: PathBuf, mode: ImportMode, expected: Hash) -> Result<bool> {
        let tt = self
            .store
            .add_path_with_opts(AddPathOptions {
                path: source.clone(),
                format: BlobFormat::Raw,
                mode,
            })
            .temp_tag()
            .await
            .map_err(Error::store)?;
        if tt.hash() != expected {
            if source == self.name_of(&expected) {
                std::fs::remove_file(&source).ok();
            }
            return Ok(false);
        }
        self.keep(expected).await?;
        Ok(true)
    }

    /// Writes the content `hash` (`size` bytes), which the store holds, to `tmp` without
    /// copying it where the file system allows: the store's own copy moves to the private name
    /// (a rename), and `tmp` becomes a second name of it. False if the content is not here
    /// whole, or what is here no longer matches it (checked before anything is written).
    pub(super) async fn place(&self, hash: Hash, size: u64, tmp: &Path) -> Result<bool> {
        if size <= INLINE_MAX {
            // Inline content lives in the store's database, verified when it arrived.
            return Ok(self
                .store
                .export_with_opts(ExportOptions {
                    hash,
                    target: tmp.to_path_buf(),
                    mode: ExportMode::Copy,
                })
                .finish()
                .await
                .is_ok());
        }
        let name = self.name_of(&hash);
        if std::fs::symlink_metadata(&name).is_err() {
            if let Err(e) = self.move_in(&self.store, hash).await {
                tracing::debug!("{e}");
                return Ok(false);
            }
        }
        self.link_out(&name, tmp)?;
        let (check, expect) = (tmp.to_path_buf(), hash);
        let matches = tokio::task::spawn_blocking(move || hash_of(&check).map(|h| h == expect))
            .await
            .map_err(|e| Error::Store(e.to_string()))?
            .map_err(|e| Error::write(tmp, e))?;
        if !matches {
            tracing::debug!("{}: no longer holds {}", name.display(), hash.fmt_short());
            std::fs::remove_file(tmp).ok();
            std::fs::remove_file(&name).ok();
        }
        Ok(matches)
    }

    /// Moves the whole content `hash` out of `store` to its private name (a rename where the
    /// store is on the folder's file system, else a copy) and returns that name.
    pub(super) async fn move_in(&self, store: &Store, hash: Hash) -> Result<PathBuf> {
        let name = self.name_of(&hash);
        if let Some(parent) = name.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
        }
        store
            .export_with_opts(ExportOptions {
                hash,
                target: name.clone(),
                mode: ExportMode::TryReference,
            })
            .finish()
            .await
            .map_err(|e| Error::write(&name, io::Error::other(e.to_string())))?;
        Ok(name)
    }

    /// Makes `tmp` a name of the content at the private name `name`: a reflink, a hard link,
    /// or (neither possible) a copy. A hard link only while the private name is the file's
    /// only other name: two files of the folder never share one (an edit in place of one
    /// would change the other).
    pub(super) fn link_out(&self, name: &Path, tmp: &Path) -> Result<()> {
        std::fs::remove_file(tmp).ok();
        if self.reflink(name, tmp) || (sole_name(name) && std::fs::hard_link(name, tmp).is_ok()) {
            return Ok(());
        }
        std::fs::remove_file(tmp).ok();
        std::fs::copy(name, tmp)
            .map(|_| ())
            .map_err(|e| Error::write(tmp, e))
    }

    /// Keeps, under this folder's own tags, the hashes of `hashes` that the legacy tags
    /// `legacy` kept.
    pub(super) async fn adopt_legacy(
        &self,
        legacy: &HashSet<Hash>,
        hashes: impl IntoIterator<Item = Hash>,
    ) -> Result<()> {
        for hash in hashes {
            if legacy.contains(&hash) {
                self.keep(hash).await?;
            }
        }
        Ok(())
    }

    /// Gives the file at `path` the private name `name`: a reflink, else a hard link. The
    /// name is replaced in one rename, so a reader of the old name never sees it missing.
    fn private_name(&self, path: &Path, name: &Path) -> io::Result<()> {
        let tmp = temp_beside(name)?;
        // Left by a process of the same id before, perhaps.
        std::fs::remove_file(&tmp).ok();
        if !self.reflink(path, &tmp) {
            std::fs::hard_link(path, &tmp)?;
        }
        let renamed = std::fs::rename(&tmp, name);
        // A rename between two names of one file does nothing: the temporary name stays.
        std::fs::remove_file(&tmp).ok();
        renamed
    }

    /// Makes `to` a reflink of `from` where the file system can; false otherwise (nothing
    /// left at `to`).
    fn reflink(&self, from: &Path, to: &Path) -> bool {
        if self.reflinks.load(Ordering::Relaxed) == NO {
            return false;
        }
        let made = reflink_copy::reflink(from, to).is_ok();
        if !made {
            std::fs::remove_file(to).ok();
        }
        // Learnt once per folder: a file system either makes them or not.
        let _ = self.reflinks.compare_exchange(
            UNKNOWN,
            if made { YES } else { NO },
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        made
    }

    /// Stops keeping what no record of the folder names any more: `live` holds every hash a
    /// current record (or this device's index) names. Returns how many were dropped. Run while
    /// nothing else of this folder keeps content (between the steps of a round).
    pub(super) async fn prune(&self, live: &HashSet<Hash>) -> Result<usize> {
        let mut dropped = 0;
        let stale = self
            .own_tags()
            .await?
            .into_iter()
            .filter(|(_, hash)| !live.contains(hash))
            .map(|(name, _)| name);
        for name in stale {
            self.store.tags().delete(name).await.map_err(Error::store)?;
            dropped += 1;
        }
        // Private names: only names of hashes are this part's to remove, and a name being made
        // right now (`private_name`) is this process's to finish.
        let own_tmp = format!(".{}-", std::process::id());
        for shard in std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            for entry in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name();
                let name = name.to_str().unwrap_or_default();
                let keep = (name.contains(&own_tmp) && name.ends_with(TEMP_SUFFIX))
                    || parse_hash(name).is_some_and(|h| live.contains(&h));
                if !keep {
                    std::fs::remove_file(entry.path()).ok();
                }
            }
        }
        Ok(dropped)
    }
}

/// The tags that kept folder content for every folder at once, before content was kept per
/// folder: each folder keeps what its index names under its own tag
/// ([`Content::adopt_legacy`]), then [`drop_legacy_tags`] removes them.
pub(crate) async fn legacy_tags(store: &Store) -> Result<Vec<(iroh_blobs::api::Tag, Hash)>> {
    let mut tags = store
        .tags()
        .list_prefix(TAG_PREFIX)
        .await
        .map_err(Error::store)?;
    let mut legacy = Vec::new();
    while let Some(tag) = tags.next().await {
        let tag = tag.map_err(Error::store)?;
        if tag.name.as_ref().len() == TAG_PREFIX.len() + 64 {
            legacy.push((tag.name, tag.hash));
        }
    }
    Ok(legacy)
}

/// Removes the tags [`legacy_tags`] found.
pub(crate) async fn drop_legacy_tags(
    store: &Store,
    legacy: Vec<(iroh_blobs::api::Tag, Hash)>,
) -> Result<()> {
    for (name, _) in legacy {
        store.tags().delete(name).await.map_err(Error::store)?;
    }
    Ok(())
}

/// A temporary name beside the private name `name`, unique per call within this process (two
/// files with the same content may be kept at the same time), its directory made.
fn temp_beside(name: &Path) -> io::Result<PathBuf> {
    let dir = name.parent().expect("a private name has a parent");
    std::fs::create_dir_all(dir)?;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        "{}.{}-{}{}",
        name.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        TEMP_SUFFIX
    ));
    Ok(tmp)
}

/// Writes `data` to the private name `name`: to a temporary name beside it, its content
/// flushed, then renamed over it, so the name never holds part of it. The directory entry is
/// not flushed per file (nor is a name moved out of the store): a power cut can lose the
/// private name, never the folder's file, which is a name of its own; this device then cannot
/// serve that version until it is written again.
fn write_private(name: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = temp_beside(name)?;
    let written = (|| {
        // A fresh file, never one a process of the same id left under this name: that may be
        // a second name of a file in the folder (`private_name` links before it renames).
        let mut file = match std::fs::File::create_new(&tmp) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&tmp)?;
                std::fs::File::create_new(&tmp)?
            }
            other => other?,
        };
        file.write_all(data)?;
        file.sync_data()?;
        std::fs::rename(&tmp, name)
    })();
    if written.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    written
}

/// True if `name` is the same file as the one `meta` describes.
#[cfg(unix)]
fn same_file(meta: &std::fs::Metadata, name: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(name).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
}

#[cfg(not(unix))]
fn same_file(_meta: &std::fs::Metadata, _name: &Path) -> bool {
    false
}

/// True if `name` is its file's only name.
#[cfg(unix)]
fn sole_name(name: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(name).is_ok_and(|m| m.nlink() == 1)
}

#[cfg(not(unix))]
fn sole_name(_name: &Path) -> bool {
    false
}

/// The BLAKE3 hash of the file at `path`.
pub(crate) fn hash_of(path: &Path) -> io::Result<Hash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(Hash::from_bytes(*hasher.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use iroh_blobs::store::fs::FsStore;

    use super::*;

    #[tokio::test]
    async fn a_file_still_being_written_is_refused_before_the_store_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("folder");
        std::fs::create_dir_all(&root).unwrap();
        let store = FsStore::load(dir.path().join("store")).await.unwrap();
        let content = Content::new(&root, (*store).clone(), Registry::default(), "f");
        // Hashed when 2,000 bytes were written; 4,000 are there now.
        let bytes: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
        let file = root.join("big.bin");
        std::fs::write(&file, &bytes).unwrap();
        let (then, now) = (Hash::new(&bytes[..2000]), Hash::new(&bytes));
        assert!(!content.keep_file(&file, then, 2000).await.unwrap());
        assert!(
            !store.has(now).await.unwrap(),
            "the store never saw what the file holds now, under a name that is then removed"
        );
        assert!(!content.name_of(&then).exists());
        // Once it is published as it is, it is servable, from its private name.
        assert!(content.keep_file(&file, now, 4000).await.unwrap());
        assert_eq!(store.get_bytes(now).await.unwrap(), bytes);
        assert!(content.name_of(&now).exists());
        store.shutdown().await.unwrap();
    }
}
