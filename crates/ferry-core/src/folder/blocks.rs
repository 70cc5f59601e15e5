//! Block lists: what lets a small edit to a large file travel as the changed blocks only.
//!
//! BLAKE3 is a tree over 1 KiB chunks, so every aligned run of 256 chunks (a 256 KiB *block*)
//! has a well-defined chaining value, and the file's hash is those values merged pairwise. A
//! file of [`MIN_FILE`] or more is published with its block list (the values, 32 bytes each,
//! stored as their own blob). A peer that holds an earlier version hashes its own blocks,
//! compares, and fetches only the blocks that differ (verified against the new hash as they
//! arrive); the list itself is checked by merging it back into the file's hash, so a wrong list
//! cannot make a wrong file. See docs/DESIGN.md, "Small edits to large files".

use std::io::Read;

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode,
};

/// A block's BLAKE3 chaining value.
pub use blake3::hazmat::ChainingValue;

/// Bytes per block: 256 chunks of 1 KiB.
pub const BLOCK_BYTES: u64 = 256 * 1024;

/// Files this large or larger get a block list; smaller ones are cheap to send whole.
pub const MIN_FILE: u64 = 4 * 1024 * 1024;

/// The number of blocks of a file of `size` bytes.
pub fn block_count(size: u64) -> u64 {
    size.div_ceil(BLOCK_BYTES)
}

/// The chaining value of the block starting at byte `offset` (a multiple of [`BLOCK_BYTES`])
/// holding `data` (a whole block, or the file's last, shorter one). Only valid for files of
/// more than one block: the single block of a small file is the root, hashed differently.
pub fn block_value(offset: u64, data: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(offset);
    h.update(data);
    h.finalize_non_root()
}

/// The file hash that a block list of a `size`-byte file merges into, or `None` when the list
/// does not fit that size (wrong count, or a file of one block).
pub fn root_of(blocks: &[ChainingValue], size: u64) -> Option<blake3::Hash> {
    if size <= BLOCK_BYTES || blocks.len() as u64 != block_count(size) {
        return None;
    }
    let left = left_subtree_len(size);
    let n = (left / BLOCK_BYTES) as usize;
    Some(merge_subtrees_root(
        &merge(&blocks[..n], left),
        &merge(&blocks[n..], size - left),
        Mode::Hash,
    ))
}

/// The chaining value of a subtree made of `blocks`, covering `len` bytes.
fn merge(blocks: &[ChainingValue], len: u64) -> ChainingValue {
    if blocks.len() == 1 {
        return blocks[0];
    }
    let left = left_subtree_len(len);
    let n = (left / BLOCK_BYTES) as usize;
    merge_subtrees_non_root(
        &merge(&blocks[..n], left),
        &merge(&blocks[n..], len - left),
        Mode::Hash,
    )
}

/// A block list as stored: the values one after another.
pub fn encode(blocks: &[ChainingValue]) -> Vec<u8> {
    blocks.concat()
}

/// Reads a stored block list, checking it against the file it describes: it must merge into
/// `hash` for a file of `size` bytes.
pub fn decode(bytes: &[u8], size: u64, hash: &blake3::Hash) -> Option<Vec<ChainingValue>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    let blocks: Vec<ChainingValue> = bytes
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    (root_of(&blocks, size)? == *hash).then_some(blocks)
}

/// A file's hash and, if it is at least [`MIN_FILE`] long, its block list, from one read.
/// `size_hint` is the size the file is expected to have: a small file gets a buffer of its
/// size, not a whole block (folders hold many small files).
pub fn hash_reader(
    mut reader: impl Read,
    size_hint: u64,
) -> std::io::Result<(blake3::Hash, Option<Vec<ChainingValue>>)> {
    let mut blocks = Vec::new();
    let mut buf = vec![0u8; size_hint.saturating_add(1).min(BLOCK_BYTES) as usize];
    let mut offset = 0u64;
    loop {
        let mut n = read_full(&mut reader, &mut buf)?;
        if n == buf.len() && buf.len() < BLOCK_BYTES as usize {
            // Larger than expected: read on with a whole block.
            buf.resize(BLOCK_BYTES as usize, 0);
            n += read_full(&mut reader, &mut buf[n..])?;
        }
        if offset == 0 && n < buf.len() {
            // One block, the whole file: that is the root, hashed as such.
            return Ok((blake3::hash(&buf[..n]), None));
        }
        if n == 0 {
            break;
        }
        blocks.push(block_value(offset, &buf[..n]));
        offset += n as u64;
        if n < buf.len() {
            break;
        }
    }
    if offset <= BLOCK_BYTES {
        // Exactly one whole block (the buffer still holds it).
        return Ok((blake3::hash(&buf[..offset as usize]), None));
    }
    let root = root_of(&blocks, offset).expect("a list of this file's own blocks");
    Ok((root, (offset >= MIN_FILE).then_some(blocks)))
}

/// Fills `buf` as far as the reader goes; returns how much it read (less only at the end).
pub fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 10) as u8)
            .collect()
    }

    #[test]
    fn block_lists_merge_into_the_files_hash() {
        let b = BLOCK_BYTES as usize;
        for len in [
            MIN_FILE as usize,
            MIN_FILE as usize + 1,
            MIN_FILE as usize + 1023,
            MIN_FILE as usize + b + 5000,
            17 * b,
            33 * b - 1,
        ] {
            let bytes = data(len, 7);
            let (hash, blocks) = hash_reader(&bytes[..], 0).unwrap();
            assert_eq!(hash, blake3::hash(&bytes), "len {len}");
            let blocks = blocks.expect("large files get a list");
            assert_eq!(blocks.len() as u64, block_count(len as u64));
            let stored = encode(&blocks);
            assert_eq!(decode(&stored, len as u64, &hash), Some(blocks));
        }
    }

    #[test]
    fn small_files_get_no_list_and_wrong_lists_are_refused() {
        let b = BLOCK_BYTES as usize;
        for len in [0, 1, 1024, b - 1, b, b + 1, 2 * b, MIN_FILE as usize - 1] {
            let small = data(len, 1);
            let (hash, blocks) = hash_reader(&small[..], len as u64).unwrap();
            assert_eq!(hash, blake3::hash(&small), "len {len}");
            assert!(blocks.is_none());
            // A file that grew since its size was seen is still hashed whole.
            let (hash, _) = hash_reader(&small[..], len as u64 / 3).unwrap();
            assert_eq!(hash, blake3::hash(&small), "len {len}, grown");
        }

        let big = data(MIN_FILE as usize * 2, 2);
        let (hash, blocks) = hash_reader(&big[..], big.len() as u64).unwrap();
        let mut blocks = blocks.unwrap();
        let size = big.len() as u64;
        // Wrong length, wrong size, a changed value: all refused.
        assert!(decode(&encode(&blocks)[..64], size, &hash).is_none());
        assert!(decode(&encode(&blocks)[..33], size, &hash).is_none());
        assert!(decode(&encode(&blocks), size + BLOCK_BYTES, &hash).is_none());
        blocks[3][0] ^= 1;
        assert!(decode(&encode(&blocks), size, &hash).is_none());
    }

    #[test]
    fn an_edit_changes_only_the_blocks_it_touches() {
        let mut bytes = data(40 * BLOCK_BYTES as usize + 123, 3);
        let (_, before) = hash_reader(&bytes[..], 0).unwrap();
        // 1 MiB overwritten starting in the middle of block 10: blocks 10..=14 change.
        let start = 10 * BLOCK_BYTES as usize + 1000;
        for b in &mut bytes[start..start + 1024 * 1024] {
            *b = !*b;
        }
        let (_, after) = hash_reader(&bytes[..], 0).unwrap();
        let changed: Vec<usize> = (0..40)
            .filter(|i| before.as_ref().unwrap()[*i] != after.as_ref().unwrap()[*i])
            .collect();
        assert_eq!(changed, (10..=14).collect::<Vec<_>>());
    }
}
