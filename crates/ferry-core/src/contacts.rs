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

/// A name from a peer, fit to keep and show: see [`clean_text`], at most [`MAX_NAME`]
/// characters. A name that reads as a node id is dropped: a device named like another's id
/// could be picked for it.
pub fn clean_name(name: &str) -> String {
    let name = clean_text(name, MAX_NAME);
    if name.parse::<iroh::EndpointId>().is_ok() {
        return String::new();
    }
    name
}

/// Text from a peer, fit to show: no control characters (no terminal escapes, no line breaks),
/// no invisible or direction-changing ones (which could make `exe.txt` of `txt.exe`), at
/// most `max` characters, trimmed.
pub fn clean_text(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .take(max)
        .collect();
    kept.trim().to_string()
}

fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

/// A change the user makes to a contact.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactChange {
    /// A name of the user's (`None`: the device's own again).
    Rename(Option<String>),
    /// Forget it: a stranger again.
    Forget,
    /// Accept its offers into this folder (`None`: ask again).
    AutoAccept(Option<PathBuf>),
}

/// The contacts of a home. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Contacts {
    path: PathBuf,
    list: Arc<Mutex<BTreeMap<String, Contact>>>,
}

impl Contacts {
    /// Loads the contacts of `home` (none if the file is missing). An unreadable file is set
    /// aside (`contacts.json.corrupt`), not overwritten.
    pub fn load(home: &Path) -> Contacts {
        let path = home.join(CONTACTS_FILE);
        let list: Vec<Contact> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{} is unreadable ({e}); set aside", path.display());
                std::fs::rename(&path, path.with_extension("json.corrupt")).ok();
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
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
                // The least recently seen goes, unless the user gave it a name or a rule.
                let oldest = list
                    .values()
                    .filter(|c| c.alias.is_none() && c.auto_accept.is_none())
                    .min_by_key(|c| c.seen_ms)
                    .map(|c| c.id.clone());
                if let Some(oldest) = oldest {
                    list.remove(&oldest);
                }
            }
            Self::save_list(&self.path, &list)
        }
    }

    /// The one contact `name` names: its id, else as a send would pick it among the contacts
    /// ([`crate::devices::pick`]: id prefix, the name the user gave, the name it gives itself).
    pub fn one(&self, name: &str) -> Result<Contact> {
        let name = name.trim();
        if let Some(c) = self.get(name) {
            return Ok(c);
        }
        // As a send picks a device: a name the user gave wins over names devices give
        // themselves (see `devices::pick`).
        let id = crate::devices::pick(name, &self.list(), &[])?;
        self.get(&id.to_string())
            .ok_or_else(|| Error::Config(format!("no device is called {name:?}")))
    }

    /// Applies `change` to the contact `device` (see [`Contacts::one`]).
    pub fn apply(&self, device: &str, change: ContactChange) -> Result<Contact> {
        let id = self.one(device)?.id;
        match change {
            ContactChange::Rename(name) => self.rename(&id, name.as_deref()),
            ContactChange::Forget => self.forget(&id),
            ContactChange::AutoAccept(dir) => self.auto_accept(&id, dir),
        }
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
        let mut list = self.lock();
        let removed = list
            .remove(id)
            .ok_or_else(|| Error::Config(format!("{id} is not a contact")))?;
        Self::save_list(&self.path, &list)?;
        Ok(removed)
    }

    fn change(&self, id: &str, f: impl FnOnce(&mut Contact)) -> Result<Contact> {
        let mut list = self.lock();
        let c = list
            .get_mut(id)
            .ok_or_else(|| Error::Config(format!("{id} is not a contact")))?;
        f(c);
        let changed = c.clone();
        Self::save_list(&self.path, &list)?;
        Ok(changed)
    }

    /// Writes the list, under its lock (two changes at once cannot lose one on disk).
    fn save_list(path: &Path, list: &BTreeMap<String, Contact>) -> Result<()> {
        let all: Vec<&Contact> = list.values().collect();
        let bytes = serde_json::to_vec_pretty(&all).expect("serializable");
        write_atomic(path, &bytes).map_err(|e| Error::write(path, e))
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
        let id = |n: u8| iroh::SecretKey::from_bytes(&[n; 32]).public().to_string();
        let (a, b) = (id(1), id(2));
        c.seen(&a, "Office laptop").unwrap();
        c.seen(&b, "Office laptop\u{202E}").unwrap();
        assert!(
            c.one("office LAPTOP").is_err(),
            "a name two devices give themselves is not an identity"
        );
        c.rename(&b, Some("Kitchen PC")).unwrap();
        assert_eq!(c.one("kitchen pc").unwrap().id, b);
        assert_eq!(c.one(&a[..8]).unwrap().id, a, "an id prefix finds it");
        assert_eq!(c.one(&a).unwrap().id, a);
        assert!(c.auto_accept(&a, Some("rel".into())).is_err());
        let dir = home.path().join("in");
        c.auto_accept(&a, Some(dir.clone())).unwrap();
        let again = Contacts::load(home.path());
        assert_eq!(again.get(&a).unwrap().auto_accept, Some(dir));
        assert_eq!(again.get(&b).unwrap().name, "Office laptop");
        again.forget(&a).unwrap();
        assert!(Contacts::load(home.path()).get(&a).is_none());
        assert!(again.forget("nobody").is_err());
    }

    #[test]
    fn names_from_peers_are_cleaned_and_bounded() {
        assert_eq!(clean_name("  a\u{0}b\nc  "), "abc");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), MAX_NAME);
        assert_eq!(
            clean_name("Office laptop\u{E0041}\u{E0042}"),
            "Office laptop"
        );
        assert_eq!(clean_text("\u{1b}[8mhidden\u{1b}[0m", 50), "[8mhidden[0m");
        let id = iroh::SecretKey::from_bytes(&[7; 32]).public().to_string();
        assert_eq!(clean_name(&id), "", "a name that reads as an id is dropped");
    }

    #[test]
    fn an_unreadable_file_is_set_aside_not_overwritten() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(CONTACTS_FILE), "{broken").unwrap();
        let c = Contacts::load(home.path());
        assert!(c.list().is_empty());
        assert!(home.path().join("contacts.json.corrupt").exists());
    }
}
