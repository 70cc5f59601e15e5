//! What a local change becomes: the publisher's decisions, apart from the disk and the
//! document so that they can be tested alone. Given what the index knew of a path (the version
//! the file was, see [`index`](super::index)), the versions peers published for it, and what is
//! on disk now, [`Publisher`] says whether there is anything to publish and with which version
//! vector. [`publish`](super::publish) does the scanning, the hashing and the writing.
//!
//! The rules, each a test below:
//! - a change follows the version the file was and this device's earlier changes, nothing
//!   else: a remote version this device never wrote to disk stays concurrent (both kept);
//! - whatever peers claimed about this device's counter, its next change counts above it;
//! - a file that holds the content of the version peers agree on is known, not republished;
//! - a conflict copy nobody has published yet is published as the very version it copies, so
//!   every peer that wrote it publishes the same thing;
//! - a deletion is published only for a path peers have (or a conflict copy they may publish).

use crate::{
    folder::{
        activity::ChangeKind,
        decide::PathState,
        index::{Known, Source},
        scan::Scanned,
        version::{FileVersion, RecordHash, Relation, VersionVector},
    },
    history::now_ms,
};

/// See the module docs.
pub(super) struct Publisher {
    /// This device, as records name it.
    device: std::sync::Arc<str>,
    /// Its name, for conflict copies.
    device_name: std::sync::Arc<str>,
}

/// What a file found changed on disk becomes.
#[derive(Debug)]
pub(super) enum FileChange {
    /// It holds the version peers agree on: known from now on, nothing to publish.
    Agrees(Known),
    /// A new version to publish, and what the index knows once it is published.
    Publish {
        version: FileVersion,
        known: Known,
        kind: ChangeKind,
    },
}

impl Publisher {
    /// The publisher of `device`, named `device_name`.
    pub(super) fn new(device: String, device_name: String) -> Publisher {
        Publisher {
            device: device.into(),
            device_name: super::version::device_name(&device_name),
        }
    }

    /// Whether `scanned` is unchanged since the index's `known`, and the document holds what
    /// `known` says it is (or need not): a file written from a record waits for that record
    /// to come back after a crash took it out of the document; a version this device
    /// published is published again; a conflict copy is published once.
    pub(super) fn unchanged(known: &Known, scanned: &Scanned, state: Option<&PathState>) -> bool {
        if !known.describes(scanned) {
            return false;
        }
        match known.source {
            Source::Record => true,
            Source::Copy => state.is_some(),
            Source::Published => state.is_some_and(|st| {
                st.versions().iter().any(|v| {
                    matches!(
                        v.version.relation(&known.vector),
                        Relation::Equal | Relation::Dominates
                    )
                })
            }),
        }
    }

    /// The file `s`, whose content hashes to `hash` (with the block list hashed to `blocks`,
    /// for a large file), that was `base` when this device last knew it; `state` holds the
    /// versions peers published for the path.
    pub(super) fn file(
        &self,
        s: &Scanned,
        hash: RecordHash,
        blocks: Option<String>,
        base: Option<&Known>,
        state: &PathState,
    ) -> FileChange {
        let main = state.outcome(&s.rel).main;
        // Where the file system has no executable bit, a change keeps the bit of the version
        // it follows.
        let exec = s.exec.unwrap_or_else(|| {
            base.map(|k| k.exec)
                .or(main.as_ref().map(|m| m.exec))
                .unwrap_or(false)
        });
        if let Some(main) = main.as_ref().filter(|m| m.hash == hash && m.exec == exec) {
            return FileChange::Agrees(Known {
                size: s.size,
                mtime_ms: s.mtime_ms,
                hash,
                vector: main.version.clone(),
                source: Source::Record,
                exec,
                dir: false,
            });
        }
        let vector = match base {
            // A conflict copy this device wrote and nobody has published yet is published as
            // the very version it is a copy of: every peer that wrote it publishes the same
            // version (no conflict between them), and an edit or a deletion of the copy by
            // anyone follows that version, so it wins everywhere.
            Some(k)
                if k.source == Source::Copy
                    && k.hash == hash
                    && k.exec == exec
                    && main.is_none() =>
            {
                k.vector.clone()
            }
            base => self.vector(state, base),
        };
        let known = Known {
            size: s.size,
            mtime_ms: s.mtime_ms,
            hash,
            vector: vector.clone(),
            source: Source::Published,
            exec,
            dir: false,
        };
        let version = FileVersion {
            hash,
            size: s.size,
            mtime_ms: s.mtime_ms,
            deleted: false,
            device: self.device.clone(),
            device_name: self.device_name.clone(),
            version: vector,
            blocks,
            exec,
            dir: false,
        };
        let kind = if main.is_some() {
            ChangeKind::Updated
        } else {
            ChangeKind::Added
        };
        FileChange::Publish {
            version,
            known,
            kind,
        }
    }

    /// The record to publish for the directory `s` found on disk, if it needs one: a new
    /// directory, or one whose record a crash took out of the document. `None` when peers
    /// already have it.
    pub(super) fn dir(
        &self,
        s: &Scanned,
        base: Option<&Known>,
        state: &PathState,
    ) -> Option<(FileVersion, Known)> {
        if state.outcome(&s.rel).main.is_some_and(|m| m.dir) {
            return None;
        }
        let vector = self.vector(state, base);
        let v = FileVersion {
            hash: RecordHash::NONE,
            size: 0,
            mtime_ms: now_ms(),
            deleted: false,
            device: self.device.clone(),
            device_name: self.device_name.clone(),
            version: vector.clone(),
            blocks: None,
            exec: false,
            dir: true,
        };
        Some((v, Known::dir(vector, Source::Published)))
    }

    /// The deletion to publish for `rel`, gone from disk, that was `base`: `None` if peers
    /// have nothing there to delete, unless it is a conflict copy they may have written too
    /// (and may publish yet): the deletion follows the copy's version, so it wins.
    pub(super) fn deletion(
        &self,
        rel: &str,
        base: Option<&Known>,
        state: &PathState,
    ) -> Option<FileVersion> {
        let copy = base.is_some_and(|k| k.source == Source::Copy);
        if state.outcome(rel).main.is_none() && !copy {
            return None;
        }
        Some(FileVersion {
            hash: RecordHash::NONE,
            size: 0,
            mtime_ms: now_ms(),
            deleted: true,
            device: self.device.clone(),
            device_name: self.device_name.clone(),
            version: self.vector(state, base),
            blocks: None,
            exec: false,
            dir: false,
        })
    }

    /// The version vector of a local change to a path whose file was `base` (`None`: a file
    /// this device did not have). It follows `base` and every earlier change of this device to
    /// the path, and nothing else: a remote version this device has not written to disk stays
    /// concurrent, so both are kept.
    fn vector(&self, state: &PathState, base: Option<&Known>) -> VersionVector {
        let mut vector = base.map(|k| k.vector.clone()).unwrap_or_default();
        // Other devices' records of the very content this file had were seen too (peers that
        // wrote the same conflict copy each publish it).
        if let Some(k) = base {
            for v in state.versions().iter().filter(|v| v.hash == k.hash) {
                vector = vector.merge(&v.version);
            }
        }
        // Whatever peers claimed about this device's counters, its change counts above them.
        vector.raise_own(&self.device, state.versions().iter().map(|v| &v.version));
        vector.bump(&self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const PEER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn hash(content: &str) -> RecordHash {
        RecordHash::of(content)
    }

    fn scanned(rel: &str, size: u64, mtime_ms: u64) -> Scanned {
        Scanned {
            rel: rel.into(),
            size,
            mtime_ms,
            exec: Some(false),
            dir: false,
        }
    }

    fn remote(device: &str, vector: VersionVector, content: &str) -> FileVersion {
        FileVersion {
            hash: hash(content),
            size: content.len() as u64,
            mtime_ms: 5,
            deleted: false,
            device: device.into(),
            device_name: "peer".into(),
            version: vector,
            blocks: None,
            exec: false,
            dir: false,
        }
    }

    fn known(content: &str, vector: VersionVector, source: Source) -> Known {
        Known {
            size: content.len() as u64,
            mtime_ms: 1,
            hash: hash(content),
            vector,
            source,
            exec: false,
            dir: false,
        }
    }

    fn publisher() -> Publisher {
        Publisher::new(ME.into(), "laptop".into())
    }

    fn published(change: FileChange) -> (FileVersion, Known, ChangeKind) {
        match change {
            FileChange::Publish {
                version,
                known,
                kind,
            } => (version, known, kind),
            other => panic!("expected a version to publish, got {other:?}"),
        }
    }

    #[test]
    fn an_edit_follows_the_version_the_file_was_and_nothing_else() {
        let p = publisher();
        let v1 = VersionVector::default().bump(PEER);
        let mut state = PathState::default();
        state.add(remote(PEER, v1.clone(), "one"));
        // The file was v1; a peer has since published v2, which this device never wrote.
        let v2 = v1.bump(PEER);
        state.add(remote(PEER, v2.clone(), "two"));
        let base = known("one", v1.clone(), Source::Record);
        let (v, k, kind) =
            published(p.file(&scanned("a", 5, 9), hash("mine"), None, Some(&base), &state));
        assert_eq!(v.version.relation(&v1), Relation::Dominates);
        assert_eq!(
            v.version.relation(&v2),
            Relation::Concurrent,
            "both are kept"
        );
        assert_eq!(
            (&*v.device, k.source, kind),
            (ME, Source::Published, ChangeKind::Updated)
        );
        assert_eq!(k.vector, v.version);
    }

    #[test]
    fn a_devices_next_edit_counts_above_whatever_peers_claimed_of_it() {
        let p = publisher();
        // A hostile peer publishes a record claiming this device's counter is huge.
        let mut forged = VersionVector::default();
        for _ in 0..1000 {
            forged = forged.bump(ME);
        }
        let forged = forged.bump(PEER);
        let mut state = PathState::default();
        state.add(remote(PEER, forged.clone(), "forged"));
        let base = known("one", VersionVector::default().bump(ME), Source::Published);
        let (v, _, _) =
            published(p.file(&scanned("a", 4, 9), hash("mine"), None, Some(&base), &state));
        assert_ne!(
            v.version.relation(&forged),
            Relation::DominatedBy,
            "this device's edit never loses to a claim about its own counter"
        );
        assert_eq!(
            v.version.relation(&VersionVector::default().bump(ME)),
            Relation::Dominates
        );
    }

    #[test]
    fn a_file_holding_the_agreed_version_is_known_not_republished() {
        let p = publisher();
        let v1 = VersionVector::default().bump(PEER);
        let mut state = PathState::default();
        state.add(remote(PEER, v1.clone(), "same"));
        match p.file(&scanned("a", 4, 9), hash("same"), None, None, &state) {
            FileChange::Agrees(k) => {
                assert_eq!((k.vector, k.source, k.mtime_ms), (v1, Source::Record, 9));
            }
            other => panic!("republished: {other:?}"),
        }
        // The same content with another executable bit is a change.
        let mut exec = scanned("a", 4, 9);
        exec.exec = Some(true);
        let (v, _, _) = published(p.file(&exec, hash("same"), None, None, &state));
        assert!(v.exec);
    }

    #[test]
    fn without_an_executable_bit_on_disk_the_bit_of_the_followed_version_is_kept() {
        let p = publisher();
        let mut base = known("one", VersionVector::default().bump(ME), Source::Published);
        base.exec = true;
        let mut s = scanned("run.sh", 3, 9);
        s.exec = None;
        let (v, k, _) =
            published(p.file(&s, hash("two"), None, Some(&base), &PathState::default()));
        assert!(v.exec && k.exec);
    }

    #[test]
    fn an_unpublished_conflict_copy_is_published_as_the_version_it_copies() {
        let p = publisher();
        let copied = VersionVector::default().bump(PEER).bump(PEER);
        let base = known("theirs", copied.clone(), Source::Copy);
        let (v, _, kind) = published(p.file(
            &scanned("a.sync-conflict-x.txt", 6, 1),
            hash("theirs"),
            None,
            Some(&base),
            &PathState::default(),
        ));
        assert_eq!((v.version, kind), (copied, ChangeKind::Added));
        // Edited before it was published: an edit of this device, following the copy.
        let (v, _, _) = published(p.file(
            &scanned("a.sync-conflict-x.txt", 6, 2),
            hash("edited"),
            None,
            Some(&base),
            &PathState::default(),
        ));
        assert_eq!(v.version.relation(&base.vector), Relation::Dominates);
    }

    #[test]
    fn deletions_are_published_only_where_peers_have_something() {
        let p = publisher();
        let empty = PathState::default();
        let base = known("one", VersionVector::default().bump(ME), Source::Published);
        assert!(p.deletion("a", Some(&base), &empty).is_none());
        let copy = known("one", VersionVector::default().bump(PEER), Source::Copy);
        let d = p
            .deletion("c", Some(&copy), &empty)
            .expect("a copy's deletion");
        assert!(d.deleted && d.version.relation(&copy.vector) == Relation::Dominates);
        let mut state = PathState::default();
        state.add(remote(PEER, VersionVector::default().bump(PEER), "one"));
        let d = p.deletion("a", None, &state).expect("peers have it");
        assert!(d.deleted && d.hash.is_empty() && &*d.device == ME);
    }

    #[test]
    fn a_directory_is_published_once() {
        let p = publisher();
        let dir = Scanned {
            rel: "docs".into(),
            size: 0,
            mtime_ms: 0,
            exec: None,
            dir: true,
        };
        let (v, k) = p.dir(&dir, None, &PathState::default()).expect("new");
        assert!(v.dir && k.dir && v.hash.is_empty());
        let mut state = PathState::default();
        state.add(v);
        assert!(p.dir(&dir, Some(&k), &state).is_none());
    }

    #[test]
    fn unchanged_means_the_same_on_disk_and_in_the_document() {
        let v1 = VersionVector::default().bump(ME);
        let k = known("one", v1.clone(), Source::Published);
        let s = Scanned {
            rel: "a".into(),
            size: 3,
            mtime_ms: 1,
            exec: Some(false),
            dir: false,
        };
        let mut state = PathState::default();
        // Published, but a crash took the record out of the document: not unchanged.
        assert!(!Publisher::unchanged(&k, &s, Some(&state)));
        assert!(!Publisher::unchanged(&k, &s, None));
        state.add(remote(ME, v1, "one"));
        assert!(Publisher::unchanged(&k, &s, Some(&state)));
        let touched = Scanned {
            mtime_ms: 2,
            ..s.clone()
        };
        assert!(!Publisher::unchanged(&k, &touched, Some(&state)));
        // Written from a peer's record: waits for that record, whatever the document says.
        let from_peer = known("one", VersionVector::default().bump(PEER), Source::Record);
        assert!(Publisher::unchanged(&from_peer, &s, None));
    }
}
