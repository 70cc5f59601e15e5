//! The one way Ferry persists a file that must survive a crash or a power cut.
//!
//! [`write_atomic`] writes the new content to a temporary file beside the target, flushes it to
//! the disk, renames it over the target and flushes the directory, so that after a crash at any
//! point the target holds either the old content or the new one, whole, never a torn mix
//! ([`AtomicFile`] does the same for content streamed rather than held in memory). The
//! files it writes are readable by their owner only: every file Ferry keeps in a home or in a
//! folder's state directory is private (keys, tokens, device names, paths).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// Replaces `path` with `data` atomically and durably (0600 on Unix).
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(data)?;
    file.commit()
}

/// A file being written in place of `path`, written by [`write_atomic`] or streamed by a
/// caller whose content is too large to hold in memory first (a folder's index of a million
/// paths). [`AtomicFile::commit`] flushes it and renames it over the target; dropped before,
/// it is removed and the target keeps its old content.
pub struct AtomicFile {
    file: Option<std::io::BufWriter<std::fs::File>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file beside `path` (readable by its owner only).
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        let dir = parent(path);
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
        // A name of its own per write: two writers of one file never share a temporary file.
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            data_encoding::HEXLOWER.encode(&rand::random::<[u8; 6]>())
        ));
        let file = create_private(&tmp)?;
        Ok(AtomicFile {
            file: Some(std::io::BufWriter::with_capacity(1 << 16, file)),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Flushes what was written to the disk and renames it over the target, then flushes the
    /// directory. An error before the rename removes the temporary file and leaves the target
    /// as it was; one flushing the directory comes after the target was replaced.
    pub fn commit(mut self) -> std::io::Result<()> {
        let file = self.file.take().expect("committed once");
        let done = file
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.path));
        if let Err(e) = done {
            std::fs::remove_file(&self.tmp).ok();
            return Err(e);
        }
        sync_dir(parent(&self.path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            // What is still buffered is not written: the file goes.
            drop(file.into_parts());
            std::fs::remove_file(&self.tmp).ok();
        }
    }
}

/// True for the name of a temporary file [`AtomicFile`] made for `target` (one a crash left
/// behind, say).
pub fn is_temporary_of(name: &str, target: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(target))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(|r| r.len() == 12 && r.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates (or truncates) `path` with `data`, readable by its owner only, and flushes it.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = create_private(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// Creates (or truncates) `path`, readable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Flushes a directory's entries (a rename into it) to the disk. Only Unix can open a
/// directory for this; elsewhere the rename is as durable as the platform makes it.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_failed_write_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        // The target's name is taken by a directory with content: the rename fails.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp left"
        );
    }

    #[test]
    fn a_streamed_file_replaces_the_target_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        write_atomic(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"half of the new").unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp left"
        );
        let mut file = AtomicFile::create(&path).unwrap();
        for _ in 0..100_000 {
            file.write_all(b"0123456789").unwrap();
        }
        file.commit().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1_000_000);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp left"
        );
        let left = AtomicFile::create(&path).unwrap();
        let name = left.tmp.file_name().unwrap().to_str().unwrap().to_string();
        assert!(is_temporary_of(&name, "index.json"), "{name}");
        assert!(!is_temporary_of(&name, "index"));
        assert!(!is_temporary_of("index.json", "index.json"));
    }
}
