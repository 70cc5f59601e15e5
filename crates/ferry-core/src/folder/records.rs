//! The folder's document: one entry per path and author, whose value is a record (a
//! [`FileVersion`]) stored as a blob. This part reads records, treating every one as a
//! peer's claim (its key is a path checked where it is read, its blob bounded before it is
//! read and decoded strictly), and writes this device's own.
//!
//! What a record may be served as: members fetch records from each other, and a record
//! becomes servable to them only if it is this folder's (fetched for it, written by this
//! device, or describing content the folder holds), never merely because a member named a
//! blob the store had for something else (see docs/DESIGN.md, threat model).

use std::collections::{BTreeMap, HashSet};

use iroh::EndpointId;
use iroh_blobs::{api::proto::BlobStatus, api::Store, Hash};
use iroh_docs::{
    api::Doc,
    store::{Query, SortBy, SortDirection},
};
use n0_future::{BufferedStreamExt, StreamExt};

use crate::{
    documents::Writer,
    error::{Error, Result},
    folder::{
        decide::PathState,
        place,
        version::{FileVersion, MAX_RECORD_SIZE},
    },
    registry::Registry,
};

/// Prefix of file entries in a folder document.
pub const KEY_PREFIX: &str = "f/";

/// Ends every key this device writes. iroh-docs removes a writer's older entries whose key
/// starts with the key of a newer one (prefix deletion, as in Willow): with `f/notes` a newer
/// record of `notes` would erase `f/notes.txt`, and a directory's record every file under it.
/// A path holds no NUL, so no key ending in one begins another. Keys written without it (by
/// earlier versions) are still read.
pub const KEY_END: u8 = 0;

/// The document key of `rel`'s records.
pub(super) fn key_of(rel: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(KEY_PREFIX.len() + rel.len() + 1);
    key.extend_from_slice(KEY_PREFIX.as_bytes());
    key.extend_from_slice(rel.as_bytes());
    key.push(KEY_END);
    key
}

/// Which entries of the document to read.
#[derive(Debug, Clone)]
pub(super) enum Keys {
    /// Every file entry.
    All,
    /// The entries of these paths (under their keys, and the keys earlier versions wrote).
    Paths(Vec<String>),
}

impl Keys {
    fn queries(&self) -> Vec<Query> {
        match self {
            Keys::All => vec![Query::key_prefix(KEY_PREFIX).into()],
            // Sorted by key: iroh-docs then looks the key up in its index by key. Its default
            // order (author, then key) filters every entry of the document instead: with a
            // million entries, seconds per path.
            Keys::Paths(rels) => rels
                .iter()
                .flat_map(|rel| {
                    [key_of(rel), format!("{KEY_PREFIX}{rel}").into_bytes()].map(|key| {
                        Query::key_exact(key)
                            .sort_by(SortBy::KeyAuthor, SortDirection::Asc)
                            .into()
                    })
                })
                .collect(),
        }
    }
}

/// How many queries of the document [`Records::read`] has in flight at once: a round asks
/// for up to thousands of paths one key at a time (iroh-docs has no query for a set of
/// keys), and one after the other each waits for the documents' actor.
const QUERIES_PARALLEL: usize = 16;

/// What one query found: the records read, and the entries whose records are missing.
type Found = (Vec<(String, FileVersion)>, Vec<(String, Hash)>);

/// A record read from the store.
pub(super) enum Record {
    /// Decoded.
    Ready(FileVersion),
    /// Not (wholly) here yet.
    Missing,
    /// Too large or malformed: never acted on.
    Refused,
}

/// See the module docs.
pub(super) struct Records {
    doc: Doc,
    /// Writes this device's records (as its author).
    writer: Writer,
    /// This device, as records name it.
    device: String,
    store: Store,
    registry: Registry,
    folder_id: String,
}

impl Records {
    /// The records of the folder `doc`, written by this `device` through `writer`.
    pub(super) fn new(
        doc: Doc,
        writer: Writer,
        device: String,
        store: Store,
        registry: Registry,
    ) -> Records {
        Records {
            folder_id: doc.id().to_string(),
            doc,
            writer,
            device,
            store,
            registry,
        }
    }

    /// The document.
    pub(super) fn doc(&self) -> &Doc {
        &self.doc
    }

    /// The entries of one path.
    #[cfg(test)]
    pub(super) fn of_path(rel: &str) -> Keys {
        Keys::Paths(vec![rel.to_string()])
    }

    /// The entries of these paths.
    pub(super) fn of_paths(rels: impl IntoIterator<Item = String>) -> Keys {
        Keys::Paths(rels.into_iter().collect())
    }

    /// Every file entry.
    pub(super) fn all() -> Keys {
        Keys::All
    }

    /// Reads the records matching `query`, grouped by path, and lists the paths whose record
    /// blobs have not arrived (iroh-docs does not retry a failed download; the folder does).
    /// `fetched` holds the record blobs just fetched for this folder (see [`Records::record`]).
    pub(super) async fn read(
        &self,
        keys: &Keys,
        fetched: &HashSet<Hash>,
    ) -> Result<(BTreeMap<String, PathState>, Vec<(String, Hash)>)> {
        // The futures are made first: a stream borrowing as it goes would not be `Send`.
        let reads: Vec<_> = keys
            .queries()
            .into_iter()
            .map(|query| self.read_query(query, fetched))
            .collect();
        // In order: which of two records claiming the same version is kept must not depend on
        // which answer came first.
        let mut reads = n0_future::stream::iter(reads).buffered_ordered(QUERIES_PARALLEL);
        let mut out: BTreeMap<String, PathState> = BTreeMap::new();
        let mut missing = Vec::new();
        while let Some(found) = reads.next().await {
            let (ready, absent) = found?;
            for (rel, v) in ready {
                out.entry(rel).or_default().add(v);
            }
            missing.extend(absent);
        }
        Ok((out, missing))
    }

    /// Reads the records matching `query` (see [`Records::read`]).
    async fn read_query(&self, query: Query, fetched: &HashSet<Hash>) -> Result<Found> {
        let (mut ready, mut missing) = (Vec::new(), Vec::new());
        let mut entries = Box::pin(self.doc.get_many(query).await.map_err(Error::store)?);
        while let Some(entry) = entries.next().await {
            let entry = entry.map_err(Error::store)?;
            let Some(rel) = key_path(entry.key()) else {
                continue;
            };
            if entry.content_len() > MAX_RECORD_SIZE as u64 {
                continue;
            }
            let hash = entry.content_hash();
            match self.record(&rel, hash, fetched.contains(&hash)).await {
                Record::Ready(v) => ready.push((rel, v)),
                Record::Missing => missing.push((rel, hash)),
                Record::Refused => {}
            }
        }
        Ok((ready, missing))
    }

    /// The record stored as `hash` for `rel`, read only if it is complete and within the size
    /// limit: a record's blob is named by a peer and may be anything. `fetched`: the blob was
    /// fetched from the folder's peers for this folder.
    pub(super) async fn record(&self, rel: &str, hash: Hash, fetched: bool) -> Record {
        match self.store.blobs().status(hash).await {
            Ok(BlobStatus::Complete { size }) if size <= MAX_RECORD_SIZE as u64 => {}
            Ok(BlobStatus::Complete { size } | BlobStatus::Partial { size: Some(size) })
                if size > MAX_RECORD_SIZE as u64 =>
            {
                tracing::debug!("ignoring a record of {size} bytes for {rel:?}");
                return Record::Refused;
            }
            _ => return Record::Missing,
        }
        let Ok(bytes) = self.store.get_bytes(hash).await else {
            return Record::Missing;
        };
        match decode_record(rel, &bytes) {
            Some(v) => {
                let ours = fetched
                    || *v.device == *self.device
                    || v.content_hash()
                        .is_some_and(|h| self.registry.folder_holds(&self.folder_id, &h));
                if ours {
                    self.registry.allow_folder(&self.folder_id, hash);
                }
                Record::Ready(v)
            }
            None => Record::Refused,
        }
    }

    /// Publishes `v` as this device's record of `rel`.
    pub(super) async fn put(&self, rel: &str, v: &FileVersion) -> Result<()> {
        let bytes = v.encode();
        // Servable before peers hear of it: they ask for the record as soon as it is inserted.
        self.registry
            .allow_folder(&self.folder_id, Hash::new(&bytes));
        self.writer.put(key_of(rel), bytes.into()).await
    }

    /// The peers the document has synced with.
    pub(super) async fn sync_peers(&self) -> Vec<EndpointId> {
        self.doc
            .get_sync_peers()
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .iter()
            .filter_map(|p| EndpointId::from_bytes(p).ok())
            .collect()
    }
}

/// The file path of a document key, if it is a file entry with a safe path: checked with the
/// same rules as one-shot names, and never naming Ferry's own state ([`place::record_path`]).
pub(super) fn key_path(key: &[u8]) -> Option<String> {
    let key = key.strip_suffix(&[KEY_END]).unwrap_or(key);
    let rel = std::str::from_utf8(key).ok()?.strip_prefix(KEY_PREFIX)?;
    if let Err(why) = place::record_path(rel) {
        tracing::warn!("ignoring a record: {why}");
        return None;
    }
    Some(rel.to_string())
}

/// The version a record's bytes hold; a malformed record is logged and ignored.
fn decode_record(rel: &str, bytes: &[u8]) -> Option<FileVersion> {
    FileVersion::decode(bytes)
        .inspect_err(|e| tracing::warn!("ignoring a malformed record for {rel:?}: {e}"))
        .ok()
}

#[cfg(test)]
mod tests {
    use iroh_blobs::store::mem::MemStore;

    use iroh_docs::AuthorId;

    use super::*;

    const ME: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const PEER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// A document in memory and its records, written by device `ME`.
    struct Setup {
        records: Records,
        registry: Registry,
        author: AuthorId,
        _docs: iroh_docs::protocol::Docs,
        _store: MemStore,
    }

    async fn setup() -> Setup {
        let store = MemStore::new();
        let (docs, sync) = crate::documents::spawn_on_loopback((*store).clone()).await;
        let doc = docs.create().await.unwrap();
        let author = docs.author_default().await.unwrap();
        let registry = Registry::default();
        let writer = Writer::new(sync, (*store).clone(), doc.id(), author, Default::default());
        let records = Records::new(doc, writer, ME.into(), (*store).clone(), registry.clone());
        Setup {
            records,
            registry,
            author,
            _docs: docs,
            _store: store,
        }
    }

    impl Setup {
        async fn raw(&self, key: &str, bytes: Vec<u8>) -> Hash {
            let hash = Hash::new(&bytes);
            self.records
                .doc()
                .set_bytes(self.author, key.to_string(), bytes)
                .await
                .unwrap();
            hash
        }

        fn folder(&self) -> &str {
            &self.records.folder_id
        }
    }

    #[tokio::test]
    async fn own_records_round_trip_and_are_servable_to_members() {
        let s = setup().await;
        let v = FileVersion::first_of(ME, b"hello");
        s.records.put("docs/a.txt", &v).await.unwrap();
        let (states, missing) = s
            .records
            .read(&Records::all(), &HashSet::new())
            .await
            .unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(states["docs/a.txt"].versions(), std::slice::from_ref(&v));
        let (one, _) = s
            .records
            .read(&Records::of_path("docs/a.txt"), &HashSet::new())
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert!(s.registry.folder_holds(s.folder(), &Hash::new(v.encode())));
    }

    /// iroh-docs removes a writer's older entries whose key starts with the key of a newer one
    /// (a file `notes` once erased `notes.txt`, a directory's record the files in it).
    #[tokio::test]
    async fn a_record_whose_path_begins_another_path_leaves_that_record_alone() {
        let s = setup().await;
        for (rel, v) in [
            ("notes.txt", FileVersion::first_of(ME, b"1")),
            ("d/a.txt", FileVersion::first_of(ME, b"2")),
            ("d.txt", FileVersion::first_of(ME, b"3")),
            ("notes", FileVersion::first_of(ME, b"4")),
            ("d", FileVersion::first_of(ME, b"5")),
        ] {
            s.records.put(rel, &v).await.unwrap();
        }
        let (states, _) = s
            .records
            .read(&Records::all(), &HashSet::new())
            .await
            .unwrap();
        let paths: Vec<&str> = states.keys().map(String::as_str).collect();
        assert_eq!(paths, ["d", "d.txt", "d/a.txt", "notes", "notes.txt"]);
        for rel in paths {
            let (one, _) = s
                .records
                .read(&Records::of_path(rel), &HashSet::new())
                .await
                .unwrap();
            assert_eq!(one.keys().collect::<Vec<_>>(), [rel], "{rel}");
        }
    }

    #[tokio::test]
    async fn records_under_the_keys_earlier_versions_wrote_are_still_read() {
        let s = setup().await;
        let v = FileVersion::first_of(PEER, b"old");
        s.raw("f/old.txt", v.encode()).await;
        for keys in [Records::all(), Records::of_path("old.txt")] {
            let (states, _) = s.records.read(&keys, &HashSet::new()).await.unwrap();
            assert_eq!(states["old.txt"].versions(), std::slice::from_ref(&v));
        }
        // Written now, it ends in the terminator.
        s.records
            .put("new.txt", &FileVersion::first_of(ME, b"new"))
            .await
            .unwrap();
        let (states, _) = s
            .records
            .read(&Records::of_path("new.txt"), &HashSet::new())
            .await
            .unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(key_path(b"f/new.txt\0").as_deref(), Some("new.txt"));
        assert_eq!(key_path(b"f/a\0b"), None, "a NUL inside a path");
    }

    #[tokio::test]
    async fn keys_naming_unsafe_paths_or_ferrys_state_are_never_read() {
        let s = setup().await;
        for key in [
            "f/../outside",
            "f/a/../../outside",
            "f//etc/passwd",
            "f/.ferry/index.json",
            "f/sub/.ferry/trash/x",
            "f/",
            "g/not-a-file-entry",
        ] {
            s.raw(key, FileVersion::first_of(PEER, b"x").encode()).await;
        }
        s.records
            .put("ok.txt", &FileVersion::first_of(ME, b"y"))
            .await
            .unwrap();
        let (states, missing) = s
            .records
            .read(&Records::all(), &HashSet::new())
            .await
            .unwrap();
        assert_eq!(states.keys().collect::<Vec<_>>(), ["ok.txt"]);
        assert!(missing.is_empty());
    }

    #[tokio::test]
    async fn oversized_malformed_and_missing_records_are_refused_or_waited_for() {
        let s = setup().await;
        s.raw("f/big", vec![b' '; MAX_RECORD_SIZE + 1]).await;
        let junk = s.raw("f/junk", b"{not json".to_vec()).await;
        // A record that lies: content with no valid hash.
        let bad = FileVersion::first_of(PEER, b"z");
        let bad = String::from_utf8(bad.encode())
            .unwrap()
            .replace(&bad.hash.to_string(), "zz");
        s.raw("f/bad", bad.into_bytes()).await;
        // An entry whose record blob has not arrived.
        let absent = Hash::new(b"never stored");
        s.records
            .doc()
            .set_hash(s.author, "f/later".to_string(), absent, 100)
            .await
            .unwrap();
        let (states, missing) = s
            .records
            .read(&Records::all(), &HashSet::new())
            .await
            .unwrap();
        assert!(states.is_empty(), "{states:?}");
        assert_eq!(missing, [("later".to_string(), absent)]);
        assert!(matches!(
            s.records.record("junk", junk, true).await,
            Record::Refused
        ));
        assert!(!s.registry.folder_holds(s.folder(), &junk));
    }

    #[tokio::test]
    async fn a_peers_record_is_servable_only_if_it_reached_the_folder_as_its_own() {
        let s = setup().await;
        // A member names a blob this node holds for something else: read, but not served.
        let theirs = FileVersion::first_of(PEER, b"another share's file");
        let hash = s.raw("f/x", theirs.encode()).await;
        assert!(matches!(
            s.records.record("x", hash, false).await,
            Record::Ready(_)
        ));
        assert!(!s.registry.folder_holds(s.folder(), &hash));
        // Fetched from the folder's peers for this folder: servable.
        assert!(matches!(
            s.records.record("x", hash, true).await,
            Record::Ready(_)
        ));
        assert!(s.registry.folder_holds(s.folder(), &hash));
        // Describing content the folder holds: servable.
        let held = FileVersion::first_of(PEER, b"held");
        s.registry
            .allow_folder(s.folder(), held.content_hash().unwrap());
        let hash = s.raw("f/held", held.encode()).await;
        assert!(matches!(
            s.records.record("held", hash, false).await,
            Record::Ready(_)
        ));
        assert!(s.registry.folder_holds(s.folder(), &hash));
    }
}
