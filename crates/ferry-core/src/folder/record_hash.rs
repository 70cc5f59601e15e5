//! The content hash a record or an index entry names: 64 hex digits on the wire and on disk,
//! 32 bytes in memory. A folder holds one per path in its cached versions and one in its
//! index: as text with a heap copy each, they were ~180 bytes a path; as bytes, 33.
//!
//! A deletion or a directory names no content: the empty text, [`RecordHash::NONE`]. Anything
//! else that is not a hash is refused where it is read, so a record cannot name something
//! no code path can parse later.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A content hash as records and the index carry it, or none (see the module docs).
///
/// Orders as its text does: none first, then by bytes (the hex digits' order).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordHash(Option<[u8; 32]>);

impl RecordHash {
    /// No content: a deletion or a directory.
    pub const NONE: RecordHash = RecordHash(None);

    /// True for [`RecordHash::NONE`].
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The hash, if there is content.
    pub fn get(&self) -> Option<iroh_blobs::Hash> {
        self.0.map(iroh_blobs::Hash::from_bytes)
    }

    /// Reads the text form: empty for none, else 64 hex digits (either case).
    pub fn parse(text: &str) -> Option<RecordHash> {
        if text.is_empty() {
            return Some(RecordHash::NONE);
        }
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        data_encoding::HEXLOWER_PERMISSIVE
            .decode_mut(text.as_bytes(), &mut out)
            .ok()?;
        Some(RecordHash(Some(out)))
    }

    /// The hash of `content` (tests name contents, not hashes).
    #[cfg(test)]
    pub(crate) fn of(content: impl AsRef<[u8]>) -> RecordHash {
        RecordHash::from(iroh_blobs::Hash::new(content))
    }

    /// Reads the text form, taking anything else for none: for Ferry's own state read back,
    /// where one damaged entry must not cost the rest (records from peers are read strictly).
    pub fn read_lenient<'de, D: serde::Deserializer<'de>>(de: D) -> Result<RecordHash, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(de)?;
        Ok(RecordHash::parse(&text).unwrap_or(RecordHash::NONE))
    }

    /// The first eight hex digits (empty for none): enough to tell contents apart in a name.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }
}

impl From<iroh_blobs::Hash> for RecordHash {
    fn from(hash: iroh_blobs::Hash) -> RecordHash {
        RecordHash(Some(*hash.as_bytes()))
    }
}

impl fmt::Display for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(bytes) = &self.0 else {
            return Ok(());
        };
        // Encoded on the stack: every record and index entry written goes through here.
        let mut hex = [0u8; 64];
        data_encoding::HEXLOWER.encode_mut(bytes, &mut hex);
        f.write_str(std::str::from_utf8(&hex).expect("hex digits"))
    }
}

impl fmt::Debug for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl Serialize for RecordHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RecordHash {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<RecordHash, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(de)?;
        RecordHash::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "not a content hash (64 hex digits): {:?}",
                text.chars().take(70).collect::<String>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_roundtrips_and_anything_else_is_refused() {
        let hash = iroh_blobs::Hash::new(b"content");
        let h = RecordHash::from(hash);
        assert_eq!(h.to_string(), hash.to_hex().to_string());
        assert_eq!(RecordHash::parse(&h.to_string()), Some(h));
        assert_eq!(RecordHash::parse(&h.to_string().to_uppercase()), Some(h));
        assert_eq!(h.get(), Some(hash));
        assert_eq!(h.short().len(), 8);
        assert_eq!(RecordHash::parse(""), Some(RecordHash::NONE));
        assert!(RecordHash::NONE.is_empty() && RecordHash::NONE.get().is_none());
        for bad in [
            "zz",
            &"a".repeat(63),
            &"a".repeat(65),
            &format!("{}g", "a".repeat(63)),
        ] {
            assert_eq!(RecordHash::parse(bad), None, "{bad}");
        }
        // Multi-byte characters never reach the byte pairs as digits.
        assert_eq!(RecordHash::parse(&"é".repeat(32)), None);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<RecordHash>(&json).unwrap(), h);
        assert_eq!(serde_json::to_string(&RecordHash::NONE).unwrap(), "\"\"");
        assert!(serde_json::from_str::<RecordHash>("\"short\"").is_err());
        assert!(
            RecordHash::NONE < h,
            "none orders first, as the empty text did"
        );
    }
}
