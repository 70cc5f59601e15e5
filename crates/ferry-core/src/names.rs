//! Validation of names inside a received collection.
//!
//! A collection is a list of `(name, hash)` pairs chosen by the sender. The sender may be hostile,
//! so every name is checked before anything is written: the name must be a relative path of
//! `/`-separated normal components that stays inside the target directory on every platform
//! Ferry runs on. The check is purely lexical and therefore the same on every OS: a name that
//! would be dangerous on Windows is refused on Linux too, so a collection that one Ferry accepts
//! every Ferry accepts.

use std::path::PathBuf;

/// Why a name was refused. Each variant names the offending name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("unsafe name in the offer: the name is empty")]
    Empty,
    /// The name starts at a filesystem root (`/x`, `\x`).
    #[error("unsafe name in the offer: {0:?} is an absolute path")]
    Absolute(String),
    /// The name has a Windows drive or UNC prefix (`C:`, `\\server`).
    #[error("unsafe name in the offer: {0:?} has a drive prefix")]
    DrivePrefix(String),
    /// The name contains a `..` component.
    #[error("unsafe name in the offer: {0:?} climbs out of the target folder with '..'")]
    ParentDir(String),
    /// The name contains an empty or `.` component (`a//b`, `a/./b`, `a/`).
    #[error("unsafe name in the offer: {0:?} has an empty or '.' component")]
    EmptyComponent(String),
    /// The name contains a NUL or other control character.
    #[error("unsafe name in the offer: {0:?} contains a control character")]
    ControlChar(String),
    /// The name contains a backslash, which is a separator on Windows.
    #[error("unsafe name in the offer: {0:?} contains a backslash")]
    Backslash(String),
    /// A component is a name Windows reserves for devices or ends in a dot or space.
    #[error("unsafe name in the offer: {0:?} uses a reserved file name")]
    Reserved(String),
    /// The name is longer than any filesystem allows.
    #[error("unsafe name in the offer: a name of {0} bytes is too long")]
    TooLong(usize),
    /// Two entries of the offer would land on the same path, or one is inside the other.
    #[error("unsafe name in the offer: {0:?} collides with another entry")]
    Collision(String),
}

/// Longest accepted name, in bytes (PATH_MAX on Linux).
pub const MAX_NAME_LEN: usize = 4096;
/// Longest accepted component, in bytes (NAME_MAX on common filesystems).
pub const MAX_COMPONENT_LEN: usize = 255;

const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Checks one name and returns it as a relative path below the target directory.
pub fn validate_name(name: &str) -> Result<PathBuf, NameError> {
    let owned = || name.to_string();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(NameError::ControlChar(owned()));
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute(owned()));
    }
    if name.starts_with("\\\\") {
        return Err(NameError::DrivePrefix(owned()));
    }
    if name.starts_with('\\') {
        return Err(NameError::Absolute(owned()));
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(NameError::DrivePrefix(owned()));
    }
    if name.contains('\\') {
        return Err(NameError::Backslash(owned()));
    }
    let mut path = PathBuf::new();
    for component in name.split('/') {
        match component {
            "" | "." => return Err(NameError::EmptyComponent(owned())),
            ".." => return Err(NameError::ParentDir(owned())),
            c => {
                if c.len() > MAX_COMPONENT_LEN {
                    return Err(NameError::TooLong(c.len()));
                }
                if c.contains(':') || is_reserved(c) {
                    return Err(NameError::Reserved(owned()));
                }
                path.push(c);
            }
        }
    }
    Ok(path)
}

fn is_reserved(component: &str) -> bool {
    if component.ends_with('.') || component.ends_with(' ') {
        return true;
    }
    let stem = component.split('.').next().unwrap_or(component);
    WINDOWS_RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem.trim_end()))
}

/// Checks every name of an offer, and that no two entries collide (`a` and `a/b`, or the same
/// name twice). Returns the relative paths in offer order.
pub fn validate_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<PathBuf>, NameError> {
    let mut out = Vec::new();
    let mut files = std::collections::HashSet::new();
    let mut dirs = std::collections::HashSet::new();
    for name in names {
        let path = validate_name(name)?;
        let key = name.to_lowercase();
        if files.contains(&key) || dirs.contains(&key) {
            return Err(NameError::Collision(name.to_string()));
        }
        let mut prefix = String::new();
        for (i, part) in key.split('/').enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            if prefix.len() < key.len() {
                if files.contains(&prefix) {
                    return Err(NameError::Collision(name.to_string()));
                }
                dirs.insert(prefix.clone());
            }
        }
        files.insert(key);
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "a.txt",
            "dir/sub/file",
            "spaces in name.txt",
            "ünïcødé/日本語.md",
            ".hidden",
            "a..b",
            "...x",
        ] {
            assert!(validate_name(ok).is_ok(), "{ok} should be accepted");
        }
        assert_eq!(
            validate_name("a/b/c").unwrap(),
            PathBuf::from("a").join("b").join("c")
        );
    }

    #[test]
    fn rejects_each_class() {
        type Check = fn(&NameError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, NameError::Empty)),
            ("/etc/passwd", |e| matches!(e, NameError::Absolute(_))),
            ("\\windows", |e| matches!(e, NameError::Absolute(_))),
            ("\\\\server\\share", |e| {
                matches!(e, NameError::DrivePrefix(_))
            }),
            ("C:evil", |e| matches!(e, NameError::DrivePrefix(_))),
            ("c:/evil", |e| matches!(e, NameError::DrivePrefix(_))),
            ("../x", |e| matches!(e, NameError::ParentDir(_))),
            ("a/../../x", |e| matches!(e, NameError::ParentDir(_))),
            ("..", |e| matches!(e, NameError::ParentDir(_))),
            ("a//b", |e| matches!(e, NameError::EmptyComponent(_))),
            ("./a", |e| matches!(e, NameError::EmptyComponent(_))),
            ("a/", |e| matches!(e, NameError::EmptyComponent(_))),
            ("a\0b", |e| matches!(e, NameError::ControlChar(_))),
            ("a\nb", |e| matches!(e, NameError::ControlChar(_))),
            ("a\u{7f}", |e| matches!(e, NameError::ControlChar(_))),
            ("a\\..\\..\\x", |e| matches!(e, NameError::Backslash(_))),
            ("dir\\file", |e| matches!(e, NameError::Backslash(_))),
            ("CON", |e| matches!(e, NameError::Reserved(_))),
            ("dir/nul.txt", |e| matches!(e, NameError::Reserved(_))),
            ("trailing.", |e| matches!(e, NameError::Reserved(_))),
            ("file:stream", |e| matches!(e, NameError::Reserved(_))),
        ];
        for (name, check) in cases {
            let err = validate_name(name).expect_err(name);
            assert!(check(&err), "{name:?} gave {err:?}");
            if !name.is_empty() {
                assert!(
                    err.to_string().contains(&format!("{name:?}")),
                    "{err} names {name:?}"
                );
            }
        }
        assert!(matches!(
            validate_name(&"x".repeat(300)),
            Err(NameError::TooLong(300))
        ));
    }

    /// Checks that an accepted name stays below the target folder.
    fn assert_contained(name: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::prop_assert;
        use std::path::{Component, Path};
        if let Ok(rel) = validate_name(name) {
            prop_assert!(
                rel.components().all(|c| matches!(c, Component::Normal(_))),
                "{:?}",
                rel
            );
            let base = Path::new("/srv/target");
            let joined = base.join(&rel);
            prop_assert!(joined.starts_with(base));
            prop_assert!(joined.components().count() > base.components().count());
            prop_assert!(!name
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty()));
        }
        Ok(())
    }

    proptest::proptest! {
        /// Names from path-ish characters, arbitrary unicode, and joined hostile segments:
        /// whatever is accepted never resolves outside the target folder.
        #[test]
        fn pathish_names_stay_inside(name in "[a-zA-Z0-9./\\\\: ~\\x00\\n-]{0,32}") {
            assert_contained(&name)?;
        }

        #[test]
        fn unicode_names_stay_inside(name in "\\PC{0,16}") {
            assert_contained(&name)?;
        }

        #[test]
        fn hostile_segments_stay_inside(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["..", ".", "", "C:", "a\\..", "x", "con", "b c"]),
                1..6,
            )
        ) {
            assert_contained(&parts.join("/"))?;
        }
    }

    #[test]
    fn rejects_collisions() {
        assert!(validate_names(["a", "b/c", "b/d"]).is_ok());
        assert!(matches!(
            validate_names(["a", "a"]),
            Err(NameError::Collision(_))
        ));
        assert!(matches!(
            validate_names(["a", "a/b"]),
            Err(NameError::Collision(_))
        ));
        assert!(matches!(
            validate_names(["a/b", "a"]),
            Err(NameError::Collision(_))
        ));
        assert!(matches!(
            validate_names(["A.txt", "a.txt"]),
            Err(NameError::Collision(_))
        ));
    }
}
