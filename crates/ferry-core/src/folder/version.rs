//! What a folder document stores per path: a [`FileVersion`] with a version vector.
//!
//! A version vector maps each device (its node id) to the number of changes it has made to the
//! path. A device that changes a file takes the largest vector it knows for that path and adds
//! one to its own counter. Comparing two vectors tells whether one version was made knowing the
//! other (it *dominates*: apply it) or without (they are *concurrent*: a conflict, keep both).
//! Unlike timestamps, this cannot mistake a clock that runs fast for a newer edit.

use std::{
    cmp::Ordering,
    collections::HashSet,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

pub use super::record_hash::RecordHash;

/// Largest accepted encoded record; records come from peers and are checked before decoding.
pub const MAX_RECORD_SIZE: usize = 64 * 1024;

/// Largest counter a record may carry. Far above any real count of edits (one a millisecond
/// for 285,000 years), and exact in every JSON implementation (2^53).
pub const MAX_COUNTER: u64 = 1 << 53;

/// Most devices (counter slots) one version vector may name.
pub const MAX_DEVICES: usize = 256;

/// Changes per device: `(slot, counter)` pairs sorted by slot, no slot twice; encoded as a map
/// from slot to counter.
///
/// A sorted list rather than a map: a folder keeps one vector per version of every path (in the
/// cached versions and in the index), most name one or two devices, and a map's first node is
/// ~400 bytes where this is one small allocation. Slots are shared text (see `slot`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionVector(Vec<(Arc<str>, u64)>);

impl VersionVector {
    /// The counter of `slot` (0 if absent).
    pub fn get(&self, slot: &str) -> u64 {
        self.position(slot).map_or(0, |i| self.0[i].1)
    }

    /// The slots and their counters, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(s, n)| (&**s, *n))
    }

    /// How many slots the vector names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if the vector names no slot.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, slot: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(s, _)| (**s).cmp(slot))
    }

    /// The counter of `slot`, made 0 if absent.
    fn entry(&mut self, slot: &str) -> &mut u64 {
        let i = match self.position(slot) {
            Ok(i) => i,
            Err(i) => {
                // Room for one more, not for four: most vectors stay this short.
                self.0.reserve_exact(1);
                self.0.insert(i, (self::slot(slot), 0));
                i
            }
        };
        &mut self.0[i].1
    }
}

impl<S: AsRef<str>> FromIterator<(S, u64)> for VersionVector {
    /// The vector of these pairs; of a slot named twice, the last counter counts.
    fn from_iter<I: IntoIterator<Item = (S, u64)>>(pairs: I) -> Self {
        let mut v = VersionVector::default();
        for (s, n) in pairs {
            *v.entry(s.as_ref()) = n;
        }
        v
    }
}

impl Serialize for VersionVector {
    fn serialize<Ser: serde::Serializer>(&self, ser: Ser) -> Result<Ser::Ok, Ser::Error> {
        ser.collect_map(self.0.iter().map(|(s, n)| (&**s, n)))
    }
}

impl<'de> Deserialize<'de> for VersionVector {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = VersionVector;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map from device to counter")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<VersionVector, A::Error> {
                let mut v = VersionVector::default();
                // How many slots a vector may name is for `check` to say (a record is refused
                // with a reason); the record's size bounds what is read here.
                while let Some(s) = map.next_key_seed(SlotSeed)? {
                    let n = map.next_value::<u64>()?;
                    match v.position(&s) {
                        Ok(i) => v.0[i].1 = n,
                        Err(i) => {
                            v.0.reserve_exact(1);
                            v.0.insert(i, (s, n));
                        }
                    }
                }
                Ok(v)
            }
        }
        /// A slot read as shared text (see `slot`), without a copy of its own first.
        struct SlotSeed;
        impl<'de> serde::de::DeserializeSeed<'de> for SlotSeed {
            type Value = Arc<str>;
            fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Arc<str>, D::Error> {
                de.deserialize_str(self)
            }
        }
        impl serde::de::Visitor<'_> for SlotSeed {
            type Value = Arc<str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a device")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Arc<str>, E> {
                Ok(slot(s))
            }
        }
        de.deserialize_map(Pairs)
    }
}

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

/// Most slot texts shared at once (see `slot`).
const SHARED_MAX: usize = 4096;

/// The shared text of a slot. A folder's vectors name the same few devices over and over:
/// each names them once. Only well-formed slots are shared (see [`Shared`]).
fn slot(s: &str) -> Arc<str> {
    static SLOTS: Shared = Shared::new();
    if !is_slot(s) {
        return s.into();
    }
    SLOTS.text(s)
}

/// The shared text of a device's name: every record a device makes names it.
pub(super) fn device_name(s: &str) -> Arc<str> {
    static NAMES: Shared = Shared::new();
    if s.len() > 4 * 64 {
        // Refused by `FileVersion::decode`; not worth a place in the table.
        return s.into();
    }
    NAMES.text(s)
}

/// A table of texts many records repeat (device ids, device names), each held once. At most
/// `SHARED_MAX` are: when the table is full, texts nothing holds any more leave it; if it is
/// still full (a peer may invent devices), a text is its own copy, and the table is not swept
/// again for `SHARED_MAX / 4` new texts, so that a table kept full costs a sweep per thousand
/// records read rather than one per record.
struct Shared(Mutex<Option<(HashSet<Arc<str>>, usize)>>);

impl Shared {
    const fn new() -> Shared {
        Shared(Mutex::new(None))
    }

    fn text(&self, s: &str) -> Arc<str> {
        let mut shared = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (shared, wait) = shared.get_or_insert_with(Default::default);
        if let Some(s) = shared.get(s) {
            return s.clone();
        }
        let s: Arc<str> = s.into();
        if shared.len() >= SHARED_MAX {
            if *wait > 0 {
                *wait -= 1;
                return s;
            }
            shared.retain(|t| Arc::strong_count(t) > 1);
            if shared.len() > SHARED_MAX / 2 {
                *wait = SHARED_MAX / 4;
            }
        }
        if shared.len() < SHARED_MAX {
            shared.insert(s.clone());
        }
        s
    }
}

/// Reads a device id as shared text.
fn shared_device<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Arc<str>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(de)?;
    Ok(slot(&s))
}

/// Reads a device name as shared text.
fn shared_name<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Arc<str>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(de)?;
    Ok(device_name(&s))
}

impl VersionVector {
    /// The vector of a new change by `device` on top of `self`: it dominates `self`, always.
    ///
    /// A device counts its changes in its own slot. Peers may claim any counter for it (a
    /// record is a stranger's input), up to [`MAX_COUNTER`]; once its slot is there, the device
    /// counts on in a fresh slot of its own (`<device>.1`, `<device>.2`, ...), so no claim can
    /// make its next change compare as older or equal. Never overflows.
    pub fn bump(&self, device: &str) -> VersionVector {
        let mut v = self.clone();
        for slot in own_slots(device) {
            let n = v.entry(&slot);
            if *n < MAX_COUNTER {
                *n += 1;
                return v;
            }
        }
        unreachable!("a vector has fewer than u64::MAX slots")
    }

    /// Raises this device's slots to the highest counters any of `others` claims for them: a
    /// change made on top cannot then be dominated by what peers said about this device.
    pub fn raise_own<'a>(
        &mut self,
        device: &str,
        others: impl IntoIterator<Item = &'a VersionVector>,
    ) {
        for other in others {
            for (slot, n) in other.iter() {
                if is_slot_of(slot, device) {
                    let e = self.entry(slot);
                    *e = (*e).max(n);
                }
            }
        }
    }

    /// Why a vector received from a peer is refused, if it is.
    pub fn check(&self) -> Result<(), String> {
        if self.0.len() > MAX_DEVICES {
            return Err(format!("a version vector names {} devices", self.0.len()));
        }
        for (slot, n) in self.iter() {
            if n > MAX_COUNTER {
                return Err(format!("a version counter of {n} is out of range"));
            }
            if !is_slot(slot) {
                return Err(format!("{slot:?} is not a device"));
            }
        }
        Ok(())
    }

    /// The smallest vector that dominates or equals both.
    pub fn merge(&self, other: &VersionVector) -> VersionVector {
        let mut v = self.clone();
        for (d, n) in other.iter() {
            let e = v.entry(d);
            *e = (*e).max(n);
        }
        v
    }

    /// How `self` relates to `other`.
    pub fn relation(&self, other: &VersionVector) -> Relation {
        let mut greater = false;
        let mut less = false;
        // Both lists are sorted: one walk through them side by side.
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() || j < other.0.len() {
            let (a, b) = match (self.0.get(i), other.0.get(j)) {
                (Some((s, a)), Some((t, b))) => match s.cmp(t) {
                    Ordering::Less => {
                        i += 1;
                        (*a, 0)
                    }
                    Ordering::Greater => {
                        j += 1;
                        (0, *b)
                    }
                    Ordering::Equal => {
                        i += 1;
                        j += 1;
                        (*a, *b)
                    }
                },
                (Some((_, a)), None) => {
                    i += 1;
                    (*a, 0)
                }
                (None, Some((_, b))) => {
                    j += 1;
                    (0, *b)
                }
                (None, None) => unreachable!("the loop's condition"),
            };
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

/// The slots a device counts in, in order: its id, then `<id>.1`, `<id>.2`, ...
fn own_slots(device: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(device.to_string()).chain((1u64..).map(move |k| format!("{device}.{k}")))
}

/// True if `slot` is one of `device`'s slots.
fn is_slot_of(slot: &str, device: &str) -> bool {
    slot.strip_prefix(device).is_some_and(|rest| {
        rest.is_empty()
            || rest
                .strip_prefix('.')
                .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// True if `slot` is a device id (64 hex digits) or one of its further slots.
fn is_slot(slot: &str) -> bool {
    // `get`, not slicing: byte 64 may fall inside a character of a hostile key.
    let Some(id) = slot.get(..64) else {
        return false;
    };
    id.bytes().all(|b| b.is_ascii_hexdigit()) && is_slot_of(slot, id) && slot.len() <= 84
}

/// One version of one path, as stored in the folder document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVersion {
    /// BLAKE3 hash of the content (hex in the record); none for a deletion or a directory.
    pub hash: RecordHash,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix milliseconds.
    pub mtime_ms: u64,
    /// True if the path was deleted.
    pub deleted: bool,
    /// The device (node id) that made this version (shared text: many records name it).
    #[serde(deserialize_with = "shared_device")]
    pub device: Arc<str>,
    /// The device's name, for conflict copies (shared text).
    #[serde(deserialize_with = "shared_name")]
    pub device_name: Arc<str>,
    /// The version vector.
    pub version: VersionVector,
    /// Hash (hex) of the content's block list, for files large enough to have one
    /// ([`blocks`](super::blocks)); absent in records of small files and deletions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<String>,
    /// True if the file is executable (Unix: its owner may execute it). Absent in records of
    /// other files, so records from before it existed decode as not executable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    /// True if the path is a directory (no content: `hash` empty, `size` 0). Directories have
    /// records of their own so that empty ones sync, created and removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
}

impl FileVersion {
    /// The first version `device` makes of a file holding `content` (tests name contents).
    #[cfg(test)]
    pub(crate) fn first_of(device: &str, content: impl AsRef<[u8]>) -> FileVersion {
        let content = content.as_ref();
        FileVersion {
            hash: RecordHash::of(content),
            size: content.len() as u64,
            mtime_ms: 1,
            deleted: false,
            device: device.into(),
            device_name: "a device".into(),
            version: VersionVector::default().bump(device),
            blocks: None,
            exec: false,
            dir: false,
        }
    }

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
        v.version.check()?;
        if v.device_name.chars().count() > 64 {
            return Err("record has a device name over 64 characters".into());
        }
        if v.dir {
            if !v.hash.is_empty() || v.size != 0 || v.blocks.is_some() {
                return Err("directory record with content".into());
            }
        } else if !v.deleted && v.hash.is_empty() {
            return Err("record has no valid content hash".into());
        }
        if v.blocks.as_deref().is_some_and(|b| parse_hash(b).is_none()) {
            return Err("record has an invalid block list hash".into());
        }
        Ok(v)
    }

    /// The content hash, if this version has valid content.
    pub fn content_hash(&self) -> Option<iroh_blobs::Hash> {
        self.hash.get()
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
/// of iroh-blobs asserts on other lengths): [`RecordHash::parse`], without its empty text.
pub fn parse_hash(hex: &str) -> Option<iroh_blobs::Hash> {
    RecordHash::parse(hex)?.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(pairs: &[(&str, u64)]) -> VersionVector {
        pairs.iter().map(|(d, n)| (*d, *n)).collect()
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
    fn vectors_keep_their_encoding_as_a_map_and_compare_slot_by_slot() {
        // As earlier versions wrote it: a map, its keys in order.
        let json = r#"{"a":3,"b.1":1,"c":7}"#;
        let v: VersionVector = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), json);
        assert_eq!(
            (v.get("a"), v.get("b.1"), v.get("c"), v.get("d")),
            (3, 1, 7, 0)
        );
        // Keys out of order are put in order; of a key named twice, the last counts.
        let w: VersionVector = serde_json::from_str(r#"{"c":7,"a":1,"b.1":1,"a":3}"#).unwrap();
        assert_eq!(w, v);
        // Slots only one side names count as 0 on the other, wherever they fall.
        let x = vv(&[("a", 3), ("bb", 1), ("c", 7)]);
        assert_eq!(x.relation(&v), Relation::Concurrent);
        assert_eq!(x.merge(&v).relation(&x), Relation::Dominates);
        assert_eq!(
            vv(&[("b", 1)]).relation(&vv(&[("a", 1), ("c", 1)])),
            Relation::Concurrent
        );
        assert_eq!(
            vv(&[("a", 1)]).relation(&vv(&[("a", 1), ("z", 1)])),
            Relation::DominatedBy
        );
        assert_eq!(
            vv(&[("a", 1), ("z", 2)]).relation(&vv(&[("z", 1)])),
            Relation::Dominates
        );
        assert_eq!(
            vv(&[("a", 0)]).relation(&VersionVector::default()),
            Relation::Equal
        );
    }

    /// Slots are shared text; what a peer invents is not kept, and texts no vector holds leave
    /// a full table, so that a device's own slots are still shared after a flood of others.
    #[test]
    fn slots_are_shared_and_invented_ones_do_not_fill_the_table_for_good() {
        let me = "9".repeat(64);
        let (a, b) = (slot(&me), slot(&me));
        assert!(Arc::ptr_eq(&a, &b), "one text for one device");
        let junk = "not a device";
        assert!(
            !Arc::ptr_eq(&slot(junk), &slot(junk)),
            "malformed slots are not kept"
        );
        // A flood of well-formed slots nothing holds on to.
        for i in 0..2 * SHARED_MAX {
            slot(&format!("{i:064x}"));
        }
        let other = "8".repeat(64);
        assert!(
            Arc::ptr_eq(&slot(&other), &slot(&other)),
            "still shared after the flood"
        );
        assert!(Arc::ptr_eq(&a, &slot(&me)), "a held text stays");
    }

    /// A peer that keeps the table full (texts its records hold) makes new texts copies of
    /// their own, and a sweep only every `SHARED_MAX / 4` of them; once it lets go, texts are
    /// shared again.
    #[test]
    fn a_table_kept_full_is_swept_now_and_then() {
        let table = Shared::new();
        let held: Vec<_> = (0..SHARED_MAX)
            .map(|i| table.text(&format!("held {i}")))
            .collect();
        let late = "a late device";
        assert!(!Arc::ptr_eq(&table.text(late), &table.text(late)), "full");
        let waiting = table.0.lock().unwrap().as_ref().unwrap().1;
        assert_eq!(waiting, SHARED_MAX / 4 - 1, "one sweep, then a wait");
        drop(held);
        for i in 0..SHARED_MAX / 4 {
            table.text(&format!("filler {i}"));
        }
        assert!(
            Arc::ptr_eq(&table.text(late), &table.text(late)),
            "shared again"
        );
    }

    /// A record of a 3-byte file by device `d`.
    fn record(d: &str, version: VersionVector) -> FileVersion {
        FileVersion {
            hash: RecordHash::parse(&"a".repeat(64)).unwrap(),
            size: 3,
            mtime_ms: 5,
            deleted: false,
            device: d.into(),
            device_name: "laptop".into(),
            version,
            blocks: None,
            exec: false,
            dir: false,
        }
    }

    /// A folder's records name the same devices over and over: decoded, they share the
    /// device's id and name instead of holding a copy each (~100 bytes a record).
    #[test]
    fn decoded_records_share_their_devices_text() {
        let d = "e".repeat(64);
        let one = FileVersion::decode(&record(&d, vv(&[(&d, 1)])).encode()).unwrap();
        let two = FileVersion::decode(&record(&d, vv(&[(&d, 2)])).encode()).unwrap();
        assert!(Arc::ptr_eq(&one.device, &two.device));
        assert!(Arc::ptr_eq(&one.device_name, &two.device_name));
        assert_eq!(&*one.device, d.as_str());
    }

    #[test]
    fn records_roundtrip_and_hostile_input_is_refused() {
        let d = "d".repeat(64);
        let v = record(&d, vv(&[(&d, 2)]));
        assert_eq!(FileVersion::decode(&v.encode()).unwrap(), v);
        assert!(FileVersion::decode(&vec![b' '; MAX_RECORD_SIZE + 1]).is_err());
        assert!(FileVersion::decode(b"{not json").is_err());
        let text = String::from_utf8(v.encode()).unwrap();
        let bad = text.replace(&v.hash.to_string(), "short");
        assert!(FileVersion::decode(bad.as_bytes()).is_err());
        // A file's record must name its content.
        let bad = text.replace(&v.hash.to_string(), "");
        assert!(FileVersion::decode(bad.as_bytes()).is_err());
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
        tomb.hash = RecordHash::NONE;
        assert!(FileVersion::decode(&tomb.encode()).is_ok());
    }

    #[test]
    fn vectors_from_peers_are_bounded() {
        let d = "d".repeat(64);
        let record = |version: VersionVector| record(&d, version);
        let ok = vv(&[(&d, MAX_COUNTER), (&format!("{d}.1"), 3)]);
        assert!(FileVersion::decode(&record(ok).encode()).is_ok());
        for bad in [
            vv(&[(&d, MAX_COUNTER + 1)]),
            vv(&[(&d, u64::MAX)]),
            vv(&[("not a device", 1)]),
            vv(&[(&format!("{d}.x"), 1)]),
            vv(&[(&"€".repeat(22), 1)]),
            (0..=MAX_DEVICES)
                .map(|i| (format!("{i:064x}"), 1))
                .collect(),
        ] {
            assert!(
                FileVersion::decode(&record(bad.clone()).encode()).is_err(),
                "{bad:?}"
            );
        }
        let mut long_name = record(VersionVector::default());
        long_name.device_name = "x".repeat(65).into();
        assert!(FileVersion::decode(&long_name.encode()).is_err());
    }

    /// Whatever a peer claims about this device's counter, up to the largest accepted, the
    /// device's next change dominates the claim; nothing overflows.
    #[test]
    fn a_devices_next_change_dominates_any_claim_about_it() {
        let me = "e".repeat(64);
        let them = "f".repeat(64);
        for claimed in [0, 1, 1000, MAX_COUNTER - 1, MAX_COUNTER] {
            let claim = vv(&[(&me, claimed), (&them, 7)]);
            let mut mine = vv(&[(&me, 3)]);
            mine.raise_own(&me, [&claim]);
            let next = mine.bump(&me);
            assert_ne!(
                next.relation(&claim),
                Relation::DominatedBy,
                "claim {claimed}"
            );
            assert_ne!(next.relation(&claim), Relation::Equal, "claim {claimed}");
            assert!(next.check().is_ok(), "{next:?}");
            // And on top of everything seen, it dominates.
            let on_top = claim.merge(&mine).bump(&me);
            assert_eq!(on_top.relation(&claim), Relation::Dominates);
        }
        // Slots already full are skipped too.
        let full = vv(&[(&me, MAX_COUNTER), (&format!("{me}.1"), MAX_COUNTER)]);
        let next = full.bump(&me);
        assert_eq!(next.get(&format!("{me}.2")), 1);
        assert_eq!(next.relation(&full), Relation::Dominates);
    }
}
