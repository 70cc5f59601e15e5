//! Writing a new version of a large file from the blocks this device already has: only the
//! blocks that differ are fetched. See [`blocks`](super::blocks) and docs/DESIGN.md, "Small
//! edits to large files".

use std::{
    io::{Seek, SeekFrom, Write},
    path::Path,
};

use iroh_blobs::{
    api::{proto::ExportRangesItem, Store},
    protocol::{ChunkRanges, ChunkRangesExt},
    Hash,
};
use n0_future::StreamExt;

use crate::{
    error::{Error, Result},
    folder::{
        blocks::{self, ChainingValue, BLOCK_BYTES, MIN_FILE},
        engine::FolderSync,
        index::Known,
        version::FileVersion,
    },
};

/// Largest block list fetched and read: 8 MiB, the list of a 64 GiB file.
const MAX_LIST: u64 = 8 << 20;

/// What [`FolderSync::patch`] did.
pub(super) enum Patch {
    /// The new version is in `tmp`.
    Done,
    /// The block list or a changed block could not be fetched yet: try again later, rather
    /// than fetching the whole file.
    NotYet,
    /// No use: the list does not match the version, or no block can be reused. Fetch the
    /// whole file.
    Impossible,
}

impl FolderSync {
    /// True if `v` can be written at `rel` from the file there plus the blocks that differ:
    /// `v` has a block list and the file on disk is a version this device knows.
    pub(super) fn can_patch(&self, rel: &str, v: &FileVersion, known: Option<&Known>) -> bool {
        // The list is read whole: a size claimed by a peer must not make it huge. Files over
        // 64 GiB (lists over 8 MiB) are fetched whole.
        if v.blocks_hash().is_none()
            || v.size < MIN_FILE
            || blocks::block_count(v.size) * 32 > MAX_LIST
        {
            return false;
        }
        let Some(known) = known.filter(|k| k.hash != v.hash) else {
            return false;
        };
        std::fs::metadata(self.root.join(rel))
            .is_ok_and(|m| m.is_file() && known.describes(&self.seen(rel.into(), &m)))
    }

    /// Writes `v`'s content to `tmp`, taking every block the file at `path` already has and
    /// fetching the others. Leaves no `tmp` unless it is [`Patch::Done`].
    pub(super) async fn patch(&self, v: &FileVersion, path: &Path, tmp: &Path) -> Result<Patch> {
        let res = self.try_patch(v, path, tmp).await;
        if !matches!(res, Ok(Patch::Done)) {
            let _ = std::fs::remove_file(tmp);
        }
        res
    }

    async fn try_patch(&self, v: &FileVersion, path: &Path, tmp: &Path) -> Result<Patch> {
        let (Some(hash), Some(list_hash)) = (v.content_hash(), v.blocks_hash()) else {
            return Ok(Patch::Impossible);
        };
        // A list holds 32 bytes per block: nothing larger is fetched or read.
        let list_size = blocks::block_count(v.size) * 32;
        if !self.store.has(list_hash).await.map_err(Error::store)?
            && !self.fetch(&[(list_hash, list_size)]).await
        {
            return Ok(Patch::NotYet);
        }
        if self.fetcher.stored_size(list_hash).await != Some(list_size) {
            tracing::debug!(
                "{}: block list of {} has the wrong size",
                path.display(),
                v.hash
            );
            return Ok(Patch::Impossible);
        }
        let list = self
            .store
            .get_bytes(list_hash)
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        let Some(wanted) =
            blocks::decode(&list, v.size, &blake3::Hash::from_bytes(*hash.as_bytes()))
        else {
            tracing::warn!(
                "{}: block list of {} does not match it",
                path.display(),
                v.hash
            );
            return Ok(Patch::Impossible);
        };
        self.content.keep(list_hash).await?;
        // The changed blocks arrive in a store of their own beside the folder's other incoming
        // content, kept between attempts and removed once the new version is written: in the
        // home's store they would stay behind as a partial copy.
        let transfer = self.fetcher.apart(hash).await?;
        let res = self
            .patch_from(transfer.store(), v, hash, wanted, path, tmp)
            .await;
        transfer.close(matches!(res, Ok(Patch::Done))).await;
        res
    }

    async fn patch_from(
        &self,
        store: &Store,
        v: &FileVersion,
        hash: Hash,
        wanted: Vec<ChainingValue>,
        path: &Path,
        tmp: &Path,
    ) -> Result<Patch> {
        let count = blocks::block_count(v.size);
        let planned = self
            .plans
            .lock()
            .expect("plans lock")
            .get(path)
            .filter(|(h, _)| *h == hash)
            .map(|(_, c)| c.clone());
        let changed = match planned {
            None => {
                // First attempt: one pass writes what can be reused and finds what cannot.
                let changed = self.reuse(path, tmp, wanted, v.size).await?;
                if changed.len() as u64 == count {
                    return Ok(Patch::Impossible);
                }
                self.plans
                    .lock()
                    .expect("plans lock")
                    .insert(path.to_path_buf(), (hash, changed.clone()));
                if !self.download_blocks(store, hash, &changed, v.size).await {
                    return Ok(Patch::NotYet);
                }
                changed
            }
            Some(planned) => {
                // A retry: the file is read again only once the blocks it lacked are here.
                if !self.download_blocks(store, hash, &planned, v.size).await {
                    return Ok(Patch::NotYet);
                }
                let changed = self.reuse(path, tmp, wanted, v.size).await?;
                if !changed.iter().all(|c| planned.contains(c)) {
                    // The file changed since the plan: plan again.
                    self.plans
                        .lock()
                        .expect("plans lock")
                        .insert(path.to_path_buf(), (hash, changed));
                    return Ok(Patch::NotYet);
                }
                changed
            }
        };
        tracing::debug!(
            "{}: {} of {count} blocks fetched",
            path.display(),
            changed.len(),
        );
        if !self
            .write_blocks(store, hash, &changed, v.size, tmp)
            .await?
        {
            return Ok(Patch::NotYet);
        }
        self.plans.lock().expect("plans lock").remove(path);
        Ok(Patch::Done)
    }

    /// Writes into `tmp` the blocks of `wanted` that the file at `path` has; returns the
    /// others.
    async fn reuse(
        &self,
        path: &Path,
        tmp: &Path,
        wanted: Vec<ChainingValue>,
        size: u64,
    ) -> Result<Vec<u64>> {
        let (src, dst) = (path.to_path_buf(), tmp.to_path_buf());
        tokio::task::spawn_blocking(move || reuse_blocks(&src, &dst, &wanted, size))
            .await
            .map_err(|e| Error::Store(e.to_string()))?
            .map_err(|e| Error::write(tmp, e))
    }

    /// Fetches the blocks `changed` of `hash` into `store`, verified against it on arrival.
    /// What arrived stays there for the next attempt.
    async fn download_blocks(&self, store: &Store, hash: Hash, changed: &[u64], size: u64) -> bool {
        if changed.is_empty() {
            return true;
        }
        let mut chunks = ChunkRanges::empty();
        for r in runs_of(changed, size) {
            chunks |= ChunkRanges::bytes(r);
        }
        let peers = self.fetch_peers().await;
        self.fetcher.fetch_ranges(&peers, store, hash, chunks).await
    }

    /// Writes the blocks `changed` of `hash`, from `store`, into `tmp` at their offsets.
    async fn write_blocks(
        &self,
        store: &Store,
        hash: Hash,
        changed: &[u64],
        size: u64,
        tmp: &Path,
    ) -> Result<bool> {
        let runs = runs_of(changed, size);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .open(tmp)
            .map_err(|e| Error::write(tmp, e))?;
        let mut written = 0u64;
        for r in runs {
            let want = r.end - r.start;
            let mut items = store.export_ranges(hash, r.clone()).stream();
            let mut got = 0u64;
            while let Some(item) = items.next().await {
                match item {
                    ExportRangesItem::Size(_) => {}
                    ExportRangesItem::Data(leaf) => {
                        // Leaves come whole; keep only what lies in the run.
                        let from = leaf.offset.max(r.start);
                        let to = (leaf.offset + leaf.data.len() as u64).min(r.end);
                        if from >= to {
                            continue;
                        }
                        let part =
                            &leaf.data[(from - leaf.offset) as usize..(to - leaf.offset) as usize];
                        out.seek(SeekFrom::Start(from))
                            .and_then(|_| out.write_all(part))
                            .map_err(|e| Error::write(tmp, e))?;
                        got += part.len() as u64;
                    }
                    ExportRangesItem::Error(e) => return Err(Error::Store(e.to_string())),
                }
            }
            if got != want {
                return Ok(false);
            }
            written += got;
        }
        tracing::debug!(
            "{}: {written} bytes of changed blocks written",
            tmp.display()
        );
        Ok(true)
    }
}

/// Creates `tmp` as a `size`-byte file holding every block of `wanted` whose bytes the file at
/// `src` has at the same place; returns the indexes of the other blocks (left as zeros).
///
/// Reading and hashing run on this thread, writing on another, so that the two overlap. The
/// file is not synced to disk here, like any file written from the store: the index records it
/// only after the rename, and a file that does not match the index is looked at again.
fn reuse_blocks(
    src: &Path,
    tmp: &Path,
    wanted: &[ChainingValue],
    size: u64,
) -> std::io::Result<Vec<u64>> {
    let mut input = std::fs::File::open(src)?;
    let have = input.metadata()?.len();
    let mut out = std::fs::File::create(tmp)?;
    out.set_len(size)?;
    let (to_write, writes) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(4);
    let (to_reuse, free) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<()> {
            for (start, data) in writes {
                out.seek(SeekFrom::Start(start))?;
                out.write_all(&data)?;
                let _ = to_reuse.send(data);
            }
            Ok(())
        });
        let mut changed = Vec::new();
        let read = (|| -> std::io::Result<()> {
            for (i, want) in wanted.iter().enumerate() {
                let start = i as u64 * BLOCK_BYTES;
                let len = BLOCK_BYTES.min(size - start) as usize;
                let mut buf = free.try_recv().unwrap_or_default();
                buf.resize(len, 0);
                // Blocks are read in order, so the input is already at `start`.
                if start + len as u64 > have || blocks::read_full(&mut input, &mut buf)? < len {
                    // Past the end of the old file: nothing more to reuse.
                    changed.extend(i as u64..wanted.len() as u64);
                    return Ok(());
                }
                if blocks::block_value(start, &buf) != *want {
                    changed.push(i as u64);
                } else if to_write.send((start, buf)).is_err() {
                    return Ok(()); // the writer failed: its error is reported below
                }
            }
            Ok(())
        })();
        drop(to_write);
        let wrote = writer.join().expect("the writer thread does not panic");
        read?;
        wrote?;
        Ok(changed)
    })
}

/// Byte ranges covering the blocks `changed` (sorted) of a `size`-byte file, neighbours joined.
fn runs_of(changed: &[u64], size: u64) -> Vec<std::ops::Range<u64>> {
    let mut runs: Vec<std::ops::Range<u64>> = Vec::new();
    for &i in changed {
        let start = i * BLOCK_BYTES;
        let end = (start + BLOCK_BYTES).min(size);
        match runs.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => runs.push(start..end),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_join_neighbouring_blocks() {
        let b = BLOCK_BYTES;
        let size = 10 * b - 7;
        assert_eq!(
            runs_of(&[1, 2, 3, 6, 9], size),
            vec![b..4 * b, 6 * b..7 * b, 9 * b..size]
        );
        assert!(runs_of(&[], size).is_empty());
    }

    #[test]
    fn reuse_keeps_matching_blocks_and_names_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let b = BLOCK_BYTES as usize;
        let old: Vec<u8> = (0..20 * b).map(|i| (i % 251) as u8).collect();
        let mut new = old.clone();
        new[5 * b + 10] ^= 0xff;
        new.extend_from_slice(&[7u8; 1000]); // grew: a new partial block at the end
        let (_, list) = blocks::hash_reader(&new[..], new.len() as u64).unwrap();
        let src = dir.path().join("old");
        let tmp = dir.path().join("new");
        std::fs::write(&src, &old).unwrap();
        let changed = reuse_blocks(&src, &tmp, &list.unwrap(), new.len() as u64).unwrap();
        assert_eq!(changed, vec![5, 20]);
        let written = std::fs::read(&tmp).unwrap();
        assert_eq!(written.len(), new.len());
        assert_eq!(written[..5 * b], new[..5 * b]);
        assert_eq!(written[6 * b..20 * b], new[6 * b..20 * b]);
        assert!(written[5 * b..6 * b].iter().all(|x| *x == 0));
    }
}
