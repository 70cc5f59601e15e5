//! Which files a share contains, and under which names.
//!
//! Each path given to share contributes one top-level entry named after its last component,
//! exactly like sendme: sharing `/home/me/photos` offers `photos/a.jpg`, `photos/b/c.jpg`.
//! Directories are walked recursively. Symbolic links are never followed out of the shared
//! tree: a link to a file inside the tree is shared as that file, anything else (a link leaving
//! the tree, a link to a directory, sockets, devices) is skipped and reported. Names that a
//! receiver would refuse (see [`crate::names`]) are skipped and reported too, so a share never
//! produces an offer that Ferry itself would reject.

use std::path::{Path, PathBuf};

use crate::{error::Error, names};

/// One file to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name in the collection (`/`-separated, relative).
    pub name: String,
    /// Where the bytes are read from.
    pub path: PathBuf,
    /// Size when collected.
    pub size: u64,
}

/// The files of a share, sorted by name, and what was left out.
#[derive(Debug, Default)]
pub struct Sources {
    /// Files to share.
    pub files: Vec<SourceFile>,
    /// Paths left out, each with the reason.
    pub skipped: Vec<String>,
}

/// Collects the files below `paths`.
pub fn collect(paths: &[PathBuf]) -> Result<Sources, Error> {
    let mut out = Sources::default();
    if paths.is_empty() {
        return Err(Error::EmptyShare("the list of paths".into()));
    }
    // Each given path is an entry named after its last component: two with one name cannot
    // both be offered (the receiver would get one folder or file of that name).
    // Compared without case: a receiver's file system may not hold both. The same path given
    // twice is offered once.
    let mut tops: std::collections::HashMap<String, (PathBuf, &PathBuf)> = Default::default();
    let mut unique: Vec<PathBuf> = Vec::new();
    for given in paths {
        let Ok(real) = std::fs::canonicalize(given) else {
            unique.push(given.clone());
            continue;
        };
        let name = real.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name {
            match tops.get(&name.to_lowercase()) {
                Some((seen, _)) if *seen == real => continue,
                _ => {}
            }
            if let Some((_, first)) = tops.insert(name.to_lowercase(), (real.clone(), given)) {
                return Err(Error::ShareSource {
                    path: given.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "{} is also called {name:?}; two items with one name cannot be sent together: put them in folders of their own, or rename one",
                            first.display()
                        ),
                    ),
                });
            }
        }
        unique.push(given.clone());
    }
    for given in &unique {
        let src_err = |source| Error::ShareSource {
            path: given.clone(),
            source,
        };
        let root = std::fs::canonicalize(given).map_err(src_err)?;
        let top = root
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                src_err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the path has no usable name",
                ))
            })?
            .to_string();
        let meta = std::fs::metadata(&root).map_err(src_err)?;
        if meta.is_file() {
            push(&mut out, top, root.clone(), meta.len());
            continue;
        }
        if !meta.is_dir() {
            out.skipped
                .push(format!("{}: not a regular file or folder", given.display()));
            continue;
        }
        for entry in walkdir::WalkDir::new(&root)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.skipped.push(format!("{e}"));
                    continue;
                }
            };
            let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
            let Some(name) = join_name(&top, rel) else {
                out.skipped.push(format!(
                    "{}: name is not valid UTF-8",
                    entry.path().display()
                ));
                continue;
            };
            let ft = entry.file_type();
            if ft.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                push(&mut out, name, entry.into_path(), size);
            } else if ft.is_symlink() {
                match std::fs::canonicalize(entry.path()) {
                    Ok(target) if target.starts_with(&root) && target.is_file() => {
                        let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
                        push(&mut out, name, target, size);
                    }
                    Ok(target) if target.starts_with(&root) => out
                        .skipped
                        .push(format!("{}: link to a folder", entry.path().display())),
                    _ => out.skipped.push(format!(
                        "{}: link points outside the shared folder",
                        entry.path().display()
                    )),
                }
            } else if !ft.is_dir() {
                out.skipped
                    .push(format!("{}: not a regular file", entry.path().display()));
            }
        }
    }
    out.files.sort_by(|a, b| a.name.cmp(&b.name));
    if let Err(e) = names::validate_names(out.files.iter().map(|f| f.name.as_str())) {
        return Err(Error::ShareSource {
            path: paths[0].clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        });
    }
    if out.files.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::EmptyShare(list.join(", ")));
    }
    Ok(out)
}

fn push(out: &mut Sources, name: String, path: PathBuf, size: u64) {
    match names::validate_name(&name) {
        Ok(_) => out.files.push(SourceFile { name, path, size }),
        Err(e) => out.skipped.push(format!("{}: {e}", path.display())),
    }
}

fn join_name(top: &str, rel: &Path) -> Option<String> {
    let mut name = top.to_string();
    for c in rel.components() {
        name.push('/');
        name.push_str(c.as_os_str().to_str()?);
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_items_with_one_name_are_refused_with_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("x.txt"), d).unwrap();
        }
        let err = collect(&[dir.path().join("a/x.txt"), dir.path().join("b/x.txt")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("b/x.txt") && text.contains("a/x.txt"),
            "{text}"
        );
        assert!(text.contains("two items with one name"), "{text}");
    }

    #[test]
    fn collects_a_tree_with_names_relative_to_parent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("sub/deeper/b c.txt"), "bc").unwrap();
        let s = collect(std::slice::from_ref(&root)).unwrap();
        let names: Vec<_> = s.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["photos/a.txt", "photos/sub/deeper/b c.txt"]);
        assert_eq!(s.files[1].size, 2);
    }

    #[cfg(unix)]
    #[test]
    fn links_never_leave_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret.txt");
        std::fs::write(&outside, "secret").unwrap();
        let root = dir.path().join("share");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("inside.txt"), "in").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("inside.txt"), root.join("alias.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("d/up")).unwrap();
        let s = collect(&[root]).unwrap();
        let names: Vec<_> = s.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["share/alias.txt", "share/inside.txt"]);
        assert_eq!(s.skipped.len(), 2, "{:?}", s.skipped);
        assert!(s.files.iter().all(|f| !f.path.ends_with("secret.txt")));
    }

    #[test]
    fn missing_and_empty_inputs_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = collect(&[dir.path().join("nope")]).unwrap_err();
        assert_eq!(err.code(), "share_source");
        assert!(err.to_string().contains("nope"));
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let err = collect(&[dir.path().join("empty")]).unwrap_err();
        assert_eq!(err.code(), "empty_share");
    }

    #[test]
    fn two_paths_with_the_same_name_collide() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["x", "y"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("same.txt"), d).unwrap();
        }
        let err =
            collect(&[dir.path().join("x/same.txt"), dir.path().join("y/same.txt")]).unwrap_err();
        assert!(err.to_string().contains("same.txt"), "{err}");
    }
}
