//! What a folder document stores per path: a [`FileVersion`] with a version vector.
//!
//! A version vector maps each device (its node id) to the number of changes it has made to the
//! path. A device that changes a file takes the largest vector it knows for that path and adds
//! one to its own counter. Comparing two vectors tells whether one version was made knowing the
//! other (it *dominates*: apply it) or without (they are *concurrent*: a conflict, keep both).
//! Unlike timestamps, this cannot mistake a clock that runs fast for a newer edit.

use std::{cmp::Ordering, collections::BTreeMap};

use serde::{Deserialize, Serialize};

/// Largest accepted encoded record; records come from peers and are checked before decoding.
pub const MAX_RECORD_SIZE: usize = 64 * 1024;

/// Changes per device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionVector(pub BTreeMap<String, u64>);

/// How two version vectors relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The same version.
    Equal,
    /// The left one was made knowing the right one.
    Dominates,
    /// The right one was made knowing the left one.
    DominatedBy,
    /// Neither knew the other: a conflict.
    Concurrent,
}

impl VersionVector {
    /// The vector of a new change by `device` on top of `self`.
    pub fn bump(&self, device: &str) -> VersionVector {
        let mut v = self.clone();
        *v.0.entry(device.to_string()).or_default() += 1;
        v
    }

    /// The smallest vector that dominates or equals both.
    pub fn merge(&self, other: &VersionVector) -> VersionVector {
        let mut v = self.clone();
        for (d, n) in &other.0 {
            let e = v.0.entry(d.clone()).or_default();
            *e = (*e).max(*n);
        }
        v
    }

    /// How `self` relates to `other`.
    pub fn relation(&self, other: &VersionVector) -> Relation {
        let mut greater = false;
        let mut less = false;
        for d in self.0.keys().chain(other.0.keys()) {
            let a = self.0.get(d).copied().unwrap_or(0);
            let b = other.0.get(d).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Greater => greater = true,
                Ordering::Less => less = true,
                Ordering::Equal => {}
            }
        }
        match (greater, less) {
            (false, false) => Relation::Equal,
            (true, false) => Relation::Dominates,
            (false, true) => Relation::DominatedBy,
            (true, true) => Relation::Concurrent,
        }
    }
}

/// One version of one path, as stored in the folder document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVersion {
    /// BLAKE3 hash of the content (hex); empty for a deletion.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix milliseconds.
    pub mtime_ms: u64,
    /// True if the path was deleted.
    pub deleted: bool,
    /// The device (node id) that made this version.
    pub device: String,
    /// The device's name, for conflict copies.
    pub device_name: String,
    /// The version vector.
    pub version: VersionVector,
    /// Hash (hex) of the content's block list, for files large enough to have one
    /// ([`blocks`](super::blocks)); absent in records of small files and deletions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<String>,
}

impl FileVersion {
    /// Encodes the record (JSON: small, and readable when debugging a folder).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializable")
    }

    /// Decodes a record received from a peer, refusing oversized or malformed input.
    pub fn decode(bytes: &[u8]) -> Result<FileVersion, String> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(format!("record of {} bytes is too large", bytes.len()));
        }
        let v: FileVersion = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if !v.deleted && parse_hash(&v.hash).is_none() {
            return Err("record has no valid content hash".into());
        }
        if v.blocks.as_deref().is_some_and(|b| parse_hash(b).is_none()) {
            return Err("record has an invalid block list hash".into());
        }
        Ok(v)
    }

    /// The content hash, if this version has valid content.
    pub fn content_hash(&self) -> Option<iroh_blobs::Hash> {
        parse_hash(&self.hash)
    }

    /// The block list's hash, if this version has a valid one.
    pub fn blocks_hash(&self) -> Option<iroh_blobs::Hash> {
        self.blocks.as_deref().and_then(parse_hash)
    }

    /// The deterministic winner between two concurrent versions: the later modification,
    /// then the larger device id. Every peer picks the same one.
    pub fn wins_over(&self, other: &FileVersion) -> bool {
        (self.mtime_ms, &self.device, &self.hash) > (other.mtime_ms, &other.device, &other.hash)
    }
}

/// Parses a hex BLAKE3 hash, refusing anything that is not exactly 64 hex digits (the parser
/// of iroh-blobs asserts on other lengths).
pub fn parse_hash(hex: &str) -> Option<iroh_blobs::Hash> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(pairs: &[(&str, u64)]) -> VersionVector {
        VersionVector(pairs.iter().map(|(d, n)| (d.to_string(), *n)).collect())
    }

    #[test]
    fn relations() {
        let a = vv(&[("a", 1)]);
        assert_eq!(a.relation(&a), Relation::Equal);
        let a2 = a.bump("a");
        assert_eq!(a2.relation(&a), Relation::Dominates);
        assert_eq!(a.relation(&a2), Relation::DominatedBy);
        let b = a.bump("b");
        assert_eq!(a2.relation(&b), Relation::Concurrent);
        let m = a2.merge(&b).bump("a");
        assert_eq!(m.relation(&a2), Relation::Dominates);
        assert_eq!(m.relation(&b), Relation::Dominates);
        assert_eq!(VersionVector::default().relation(&a), Relation::DominatedBy);
    }

    #[test]
    fn records_roundtrip_and_hostile_input_is_refused() {
        let v = FileVersion {
            hash: "a".repeat(64),
            size: 3,
            mtime_ms: 5,
            deleted: false,
            device: "d".into(),
            device_name: "laptop".into(),
            version: vv(&[("d", 2)]),
            blocks: None,
        };
        assert_eq!(FileVersion::decode(&v.encode()).unwrap(), v);
        assert!(FileVersion::decode(&vec![b' '; MAX_RECORD_SIZE + 1]).is_err());
        assert!(FileVersion::decode(b"{not json").is_err());
        let mut bad = v.clone();
        bad.hash = "short".into();
        assert!(FileVersion::decode(&bad.encode()).is_err());
        let mut bad = v.clone();
        bad.blocks = Some("zz".into());
        assert!(FileVersion::decode(&bad.encode()).is_err());
        // Records without the field (small files, older peers) still decode.
        let mut large = v.clone();
        large.blocks = Some("b".repeat(64));
        assert_eq!(FileVersion::decode(&large.encode()).unwrap(), large);
        assert!(!String::from_utf8(v.encode()).unwrap().contains("blocks"));
        let mut tomb = v;
        tomb.deleted = true;
        tomb.hash.clear();
        assert!(FileVersion::decode(&tomb.encode()).is_ok());
    }
}
