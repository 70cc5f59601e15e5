//! The node's persistent identity: an ed25519 secret key stored in the home, readable only by
//! its owner. The public half is the node id that tickets carry.

use std::path::Path;

use iroh::SecretKey;

use crate::{atomic::write_atomic, error::Error};

/// File name of the secret key inside the home.
pub const KEY_FILE: &str = "secret.key";

/// Loads the secret key from `home`, creating it (mode 0600) on first use.
pub fn load_or_create(home: &Path) -> Result<SecretKey, Error> {
    let path = home.join(KEY_FILE);
    let home_err = |reason: String| Error::Home {
        path: home.to_path_buf(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = data_encoding::HEXLOWER_PERMISSIVE
                .decode(text.trim().as_bytes())
                .map_err(|e| home_err(format!("{} is not a valid key: {e}", path.display())))?;
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| home_err(format!("{} does not hold a 32-byte key", path.display())))?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let hex = data_encoding::HEXLOWER.encode(&key.to_bytes());
            write_atomic(&path, hex.as_bytes())
                .map_err(|e| home_err(format!("cannot write {}: {e}", path.display())))?;
            Ok(key)
        }
        Err(e) => Err(home_err(format!("cannot read {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_persists_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "zz").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert_eq!(err.code(), "home_unusable");
        assert!(err.to_string().contains(KEY_FILE));
    }
}
