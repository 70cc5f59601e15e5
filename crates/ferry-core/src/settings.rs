//! User settings, kept in `settings.json` in the home.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{atomic::write_atomic, config::RelayChoice, error::Error, limits::RateLimits};

/// File name of the settings inside the home.
pub const SETTINGS_FILE: &str = "settings.json";

/// What the user can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct Settings {
    /// How this device is called (shown to peers and in conflict file names).
    pub device_name: String,
    /// Where received files go by default; `None` means the user's Downloads folder.
    pub download_dir: Option<PathBuf>,
    /// Relay servers (takes effect when the node restarts).
    pub relay: RelayChoice,
    /// Files in a synced folder's trash older than this many days are deleted for good.
    pub trash_days: u32,
    /// A synced folder's trash is kept under this many MiB (the oldest files go first).
    pub trash_mib: u32,
    /// Upload rate limits (in force at once in the app; for `ferry`, when the node starts).
    pub upload: RateLimits,
    /// Download rate limits.
    pub download: RateLimits,
    /// Shares received here are served to their other receivers while their sender shares
    /// them (see [`crate::seed`]).
    pub keep_serving: bool,
    /// The app's language (`en`, `de`); `None` follows the system.
    pub language: Option<String>,
    /// Which notifications the app shows.
    pub notify: Notify,
    /// Devices on the same local network see this one (see [`crate::nearby`]).
    pub visible_nearby: bool,
}

/// Which notifications the app shows, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct Notify {
    /// A receive finished.
    pub received: bool,
    /// A device finished downloading something this device shares.
    pub peer_done: bool,
    /// A synced folder has a new conflict to review.
    pub conflict: bool,
    /// A synced folder stopped with an error.
    pub folder_error: bool,
    /// Another device offers files.
    pub offer: bool,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            received: true,
            peer_done: true,
            conflict: true,
            folder_error: true,
            offer: true,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            device_name: default_device_name(),
            download_dir: None,
            relay: RelayChoice::Default,
            trash_days: 30,
            trash_mib: 1024,
            upload: RateLimits::default(),
            download: RateLimits::default(),
            keep_serving: true,
            language: None,
            notify: Notify::default(),
            visible_nearby: true,
        }
    }
}

impl Settings {
    /// Loads the settings of `home`, or the defaults. A setting the file holds in a form this
    /// version cannot read (edited by hand, written by another version) falls back to its
    /// default alone: one odd value does not reset the others (a relay turned off, say).
    pub fn load(home: &Path) -> Settings {
        let path = home.join(SETTINGS_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Settings::default();
        };
        if let Ok(settings) = serde_json::from_slice(&bytes) {
            return settings;
        }
        let Ok(serde_json::Value::Object(stored)) = serde_json::from_slice(&bytes) else {
            tracing::debug!("{} is unreadable; using the defaults", path.display());
            return Settings::default();
        };
        let mut kept = serde_json::Map::new();
        for (key, value) in stored {
            let mut candidate = kept.clone();
            candidate.insert(key.clone(), value);
            if serde_json::from_value::<Settings>(serde_json::Value::Object(candidate.clone()))
                .is_ok()
            {
                kept = candidate;
            } else {
                // Read often (every status refresh): said at debug level, not warned each time.
                tracing::debug!(
                    "{}: `{key}` is not valid; using its default",
                    path.display()
                );
            }
        }
        serde_json::from_value(serde_json::Value::Object(kept)).unwrap_or_default()
    }

    /// Saves the settings into `home`, after checking them.
    pub fn save(&self, home: &Path) -> Result<(), Error> {
        if self.device_name.trim().is_empty() {
            return Err(Error::Config("the device name cannot be empty".into()));
        }
        if self.device_name.chars().count() > 64 {
            return Err(Error::Config(
                "the device name is longer than 64 characters".into(),
            ));
        }
        if let Some(dir) = &self.download_dir {
            if !dir.is_absolute() {
                return Err(Error::Config(format!(
                    "the download folder must be an absolute path, got {}",
                    dir.display()
                )));
            }
        }
        if let Some(lang) = &self.language {
            // A language tag: `de`, `pt-BR`; the app falls back to English for one it lacks.
            let valid = !lang.is_empty()
                && lang.len() <= 16
                && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                return Err(Error::Config(format!("{lang:?} is not a language tag")));
            }
        }
        for (limits, what) in [(&self.upload, "an upload"), (&self.download, "a download")] {
            limits.check(what).map_err(Error::Config)?;
        }
        let path = home.join(SETTINGS_FILE);
        let bytes = serde_json::to_vec_pretty(self).expect("serializable");
        write_atomic(&path, &bytes).map_err(|e| Error::Home {
            path: home.to_path_buf(),
            reason: format!("cannot save settings: {e}"),
        })
    }

    /// The folder received files go to: the setting, else Downloads, else the home folder.
    pub fn effective_download_dir(&self) -> PathBuf {
        self.download_dir
            .clone()
            .or_else(|| {
                directories::UserDirs::new().and_then(|u| u.download_dir().map(Path::to_path_buf))
            })
            .or_else(|| directories::UserDirs::new().map(|u| u.home_dir().join("Downloads")))
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

fn default_device_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "My device".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_odd_value_falls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            r#"{"device_name":"laptop","relay":{"mode":"disabled"},"notify":null,"language":5,"trash_days":"many"}"#,
        )
        .unwrap();
        let s = Settings::load(dir.path());
        assert_eq!(s.device_name, "laptop");
        assert_eq!(s.relay, RelayChoice::Disabled, "the relay choice survives");
        assert_eq!(s.notify, Notify::default());
        assert_eq!(s.language, None);
        assert_eq!(s.trash_days, Settings::default().trash_days);
        std::fs::write(dir.path().join(SETTINGS_FILE), "[1, 2]").unwrap();
        assert_eq!(Settings::load(dir.path()), Settings::default());
    }

    #[test]
    fn roundtrip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(dir.path()), Settings::default());
        let s = Settings {
            device_name: "laptop".into(),
            download_dir: Some(dir.path().join("in")),
            relay: RelayChoice::Disabled,
            trash_days: 7,
            trash_mib: 100,
            upload: RateLimits {
                total: Some(1 << 20),
                per_peer: None,
            },
            download: RateLimits {
                total: None,
                per_peer: Some(512 << 10),
            },
            keep_serving: false,
            language: Some("de".into()),
            notify: Notify {
                conflict: false,
                ..Notify::default()
            },
            visible_nearby: false,
        };
        s.save(dir.path()).unwrap();
        assert_eq!(Settings::load(dir.path()), s);
        assert_eq!(s.effective_download_dir(), dir.path().join("in"));
        let bad = Settings {
            device_name: " ".into(),
            ..s.clone()
        };
        assert_eq!(bad.save(dir.path()).unwrap_err().code(), "invalid_config");
        let stopped = Settings {
            download: RateLimits {
                total: Some(0),
                per_peer: None,
            },
            ..s.clone()
        };
        assert_eq!(
            stopped.save(dir.path()).unwrap_err().code(),
            "invalid_config"
        );
        let odd = Settings {
            language: Some("../de".into()),
            ..s.clone()
        };
        assert_eq!(odd.save(dir.path()).unwrap_err().code(), "invalid_config");
        let rel = Settings {
            download_dir: Some("rel".into()),
            ..s
        };
        assert!(rel
            .save(dir.path())
            .unwrap_err()
            .to_string()
            .contains("absolute"));
    }
}
