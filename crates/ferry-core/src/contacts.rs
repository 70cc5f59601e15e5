//! Contacts: the devices this one has exchanged files with, by id, with the name each gave
//! (a claim) and the name the user gave it, kept in `contacts.json`.
//!
//! A contact is what lets a device be picked by name ("send to Office laptop") and what an
//! auto-accept rule hangs on. A name never authorises anything: two devices may claim the
//! same name, and every decision is made on the id, which the connection's handshake proves.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::{
    atomic::write_atomic,
    error::{Error, Result},
};

/// File in the home holding the contacts.
pub const CONTACTS_FILE: &str = "contacts.json";
/// Contacts kept at most (the least recently seen go first).
pub const MAX_CONTACTS: usize = 1024;
/// Characters of a name kept.
pub const MAX_NAME: usize = 64;

/// A device this one knows.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Its node id.
    pub id: String,
    /// The name it gave itself, last time (a claim).
    pub name: String,
    /// The name the user gave it, if any (shown instead of its own).
    #[serde(default)]
    pub alias: Option<String>,
    /// When it was last seen, Unix milliseconds.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub seen_ms: u64,
    /// Offers from it are accepted without asking, into this folder.
    #[serde(default)]
    pub auto_accept: Option<PathBuf>,
}

impl Contact {
    /// The name to show: the user's, else its own.
    pub fn shown_name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// A name from a peer, fit to keep and show: no control or formatting characters, at most
/// [`MAX_NAME`] characters, trimmed.
pub fn clean_name(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_format(*c))
        .take(MAX_NAME)
        .collect();
    kept.trim().to_string()
}

fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The contacts of a home. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Contacts {
    path: PathBuf,
    list: Arc<Mutex<BTreeMap<String, Contact>>>,
}

impl Contacts {
    /// Loads the contacts of `home` (none if the file is missing or unreadable).
    pub fn load(home: &Path) -> Contacts {
        let path = home.join(CONTACTS_FILE);
        let list: Vec<Contact> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Contacts {
            path,
            list: Arc::new(Mutex::new(
                list.into_iter().map(|c| (c.id.clone(), c)).collect(),
            )),
        }
    }

    /// Every contact, the most recently seen first.
    pub fn list(&self) -> Vec<Contact> {
        let mut all: Vec<Contact> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| b.seen_ms.cmp(&a.seen_ms).then(a.id.cmp(&b.id)));
        all
    }

    /// The contact `id`, if it is one.
    pub fn get(&self, id: &str) -> Option<Contact> {
        self.lock().get(id).cloned()
    }

    /// The contacts whose shown name is `name` (ignoring case), or whose id starts with it.
    pub fn find(&self, name: &str) -> Vec<Contact> {
        let wanted = name.trim().to_lowercase();
        self.list()
            .into_iter()
            .filter(|c| {
                c.shown_name().to_lowercase() == wanted
                    || (wanted.len() >= 6 && c.id.starts_with(&wanted))
            })
            .collect()
    }

    /// Records that `id` was met now, calling itself `name`.
    pub fn seen(&self, id: &str, name: &str) -> Result<()> {
        let now = crate::history::now_ms();
        {
            let mut list = self.lock();
            let entry = list.entry(id.to_string()).or_insert_with(|| Contact {
                id: id.to_string(),
                name: String::new(),
                alias: None,
                seen_ms: now,
                auto_accept: None,
            });
            entry.name = clean_name(name);
            entry.seen_ms = now;
            if list.len() > MAX_CONTACTS {
                let oldest = list
                    .values()
                    .min_by_key(|c| c.seen_ms)
                    .map(|c| c.id.clone())
                    .expect("not empty");
                list.remove(&oldest);
            }
        }
        self.save()
    }

    /// Gives the contact `id` a name of the user's (`None`: its own again).
    pub fn rename(&self, id: &str, alias: Option<&str>) -> Result<Contact> {
        self.change(id, |c| {
            c.alias = alias.map(clean_name).filter(|a| !a.is_empty())
        })
    }

    /// Accepts offers from `id` without asking, into `dir` (`None`: ask again).
    pub fn auto_accept(&self, id: &str, dir: Option<PathBuf>) -> Result<Contact> {
        if let Some(d) = &dir {
            if !d.is_absolute() {
                return Err(Error::Config(format!(
                    "the folder for offers must be an absolute path, got {}",
                    d.display()
                )));
            }
        }
        self.change(id, |c| c.auto_accept = dir)
    }

    /// Forgets the contact `id`.
    pub fn forget(&self, id: &str) -> Result<Contact> {
        let removed = self
            .lock()
            .remove(id)
            .ok_or_else(|| Error::Config(format!("{id} is not a contact")))?;
        self.save()?;
        Ok(removed)
    }

    fn change(&self, id: &str, f: impl FnOnce(&mut Contact)) -> Result<Contact> {
        let changed = {
            let mut list = self.lock();
            let c = list
                .get_mut(id)
                .ok_or_else(|| Error::Config(format!("{id} is not a contact")))?;
            f(c);
            c.clone()
        };
        self.save()?;
        Ok(changed)
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.list()).expect("serializable");
        write_atomic(&self.path, &bytes).map_err(|e| Error::write(&self.path, e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Contact>> {
        self.list.lock().expect("contacts lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_kept_renamed_found_and_forgotten() {
        let home = tempfile::tempdir().unwrap();
        let c = Contacts::load(home.path());
        c.seen("aaaaaaaaaa01", "Office laptop").unwrap();
        c.seen("bbbbbbbbbb02", "Office laptop\u{202E}").unwrap();
        assert_eq!(
            c.find("office LAPTOP").len(),
            2,
            "a name is not an identity"
        );
        c.rename("bbbbbbbbbb02", Some("Kitchen PC")).unwrap();
        assert_eq!(c.find("kitchen pc")[0].id, "bbbbbbbbbb02");
        assert_eq!(
            c.find("aaaaaa")[0].id,
            "aaaaaaaaaa01",
            "an id prefix finds it"
        );
        assert!(c.auto_accept("aaaaaaaaaa01", Some("rel".into())).is_err());
        let dir = home.path().join("in");
        c.auto_accept("aaaaaaaaaa01", Some(dir.clone())).unwrap();
        let again = Contacts::load(home.path());
        assert_eq!(again.get("aaaaaaaaaa01").unwrap().auto_accept, Some(dir));
        assert_eq!(again.get("bbbbbbbbbb02").unwrap().name, "Office laptop");
        again.forget("aaaaaaaaaa01").unwrap();
        assert!(Contacts::load(home.path()).get("aaaaaaaaaa01").is_none());
        assert!(again.forget("nobody").is_err());
    }

    #[test]
    fn names_from_peers_are_cleaned_and_bounded() {
        assert_eq!(clean_name("  a\u{0}b\nc  "), "abc");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), MAX_NAME);
    }
}
