//! The devices a node can send to: its contacts and the devices nearby, each with its name,
//! whether it is online and by which path.

use std::{collections::BTreeMap, path::PathBuf};

use iroh::EndpointId;
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    nearby::hello,
    progress::Via,
};

/// Devices asked at once whether they are online.
const PROBING: usize = 16;
/// Contacts asked at most, the most recently seen first.
const MAX_PROBED: usize = 64;

/// A device: a contact, a nearby device, or both.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Its node id.
    pub id: String,
    /// The name to show: the user's name for it, else its own (empty if it never said).
    pub name: String,
    /// The name it gives itself (a claim; empty if it never said).
    pub claimed: String,
    /// A contact: this device exchanged files with it.
    pub contact: bool,
    /// Found on the local network right now.
    pub nearby: bool,
    /// Reachable right now (nearby, connected, or it answered when asked).
    pub online: bool,
    /// The path to it, when connected: direct, or through a relay.
    pub via: Option<Via>,
    /// Its offers are accepted without asking, into this folder.
    pub auto_accept: Option<PathBuf>,
    /// When it was last met, Unix milliseconds (0: never, only seen nearby).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub seen_ms: u64,
}

impl Device {
    /// A contact, as known from the contacts alone (not nearby, online not known).
    pub fn of_contact(c: crate::contacts::Contact) -> Device {
        Device {
            name: c.shown_name().to_string(),
            claimed: c.name,
            id: c.id,
            contact: true,
            nearby: false,
            online: false,
            via: None,
            auto_accept: c.auto_accept,
            seen_ms: c.seen_ms,
        }
    }

    /// A device that is not a contact, by the name it gives itself.
    fn stranger(id: String, name: String) -> Device {
        Device {
            id,
            claimed: name.clone(),
            name,
            contact: false,
            nearby: false,
            online: false,
            via: None,
            auto_accept: None,
            seen_ms: 0,
        }
    }

    /// A short form of its id, to tell devices with one name apart.
    pub fn short_id(&self) -> &str {
        self.id.get(..10).unwrap_or(&self.id)
    }
}

/// Whether `d` is online, and by which path: a live connection, else (with `probe`, for a
/// contact not nearby) an answer to a hello.
async fn look(endpoint: &iroh::Endpoint, mut d: Device, probe: bool) -> Device {
    let Ok(id) = d.id.parse::<EndpointId>() else {
        return d;
    };
    d.via = Via::of_remote(endpoint, id).await;
    if d.via.is_some() {
        d.online = true;
    } else if probe && d.contact && !d.nearby {
        if let Ok(answer) = hello::ask(endpoint, iroh::EndpointAddr::new(id)).await {
            d.online = true;
            d.via = answer.via;
        }
    }
    d
}

impl crate::node::Node {
    /// The contacts and the nearby devices. With `probe`, each contact that is not nearby
    /// is asked (a few seconds at most, in parallel) whether it is online; without, only what
    /// is known now counts (nearby, or a live connection).
    pub async fn devices(&self, probe: bool) -> Vec<Device> {
        let mut all: BTreeMap<String, Device> = BTreeMap::new();
        let contacts = self.contacts().list();
        // Probing asks the most recently seen contacts (the list's order): a long list of old
        // ones would keep a caller waiting for minutes.
        let to_probe: std::collections::HashSet<String> = contacts
            .iter()
            .take(if probe { MAX_PROBED } else { 0 })
            .map(|c| c.id.clone())
            .collect();
        for c in contacts {
            all.insert(c.id.clone(), Device::of_contact(c));
        }
        for f in self.nearby().list() {
            let d = all
                .entry(f.id.to_string())
                .or_insert_with(|| Device::stranger(f.id.to_string(), f.name));
            d.nearby = true;
            d.online = true;
        }
        let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(PROBING));
        let mut looks = tokio::task::JoinSet::new();
        for d in all.into_values() {
            let (endpoint, turns) = (self.endpoint().clone(), turns.clone());
            let probe = to_probe.contains(&d.id);
            looks.spawn(async move {
                let _turn = turns.acquire_owned().await;
                look(&endpoint, d, probe).await
            });
        }
        let mut list: Vec<Device> = looks.join_all().await;
        list.sort_by(|a, b| {
            (!a.online, !a.contact, a.name.to_lowercase(), &a.id).cmp(&(
                !b.online,
                !b.contact,
                b.name.to_lowercase(),
                &b.id,
            ))
        });
        list
    }

    /// The device at `addr` as this one knows it (a contact, a nearby device), else as it
    /// names itself when asked there (a few seconds at most; a device that does not answer,
    /// such as a sendme sender, has no name).
    pub async fn who(&self, addr: iroh::EndpointAddr) -> Device {
        let key = addr.id.to_string();
        let near = self.nearby().list().into_iter().find(|f| f.id == addr.id);
        let known = match (self.contacts().get(&key), near) {
            (Some(c), near) => Some(Device {
                nearby: near.is_some(),
                // Not when it was last seen: who shares a ticket says nothing of that.
                seen_ms: 0,
                ..Device::of_contact(c)
            }),
            (None, Some(f)) => Some(Device {
                nearby: true,
                ..Device::stranger(key.clone(), f.name)
            }),
            (None, None) => None,
        };
        if let Some(mut d) = known {
            d.via = Via::of_remote(self.endpoint(), addr.id).await;
            d.online = d.nearby || d.via.is_some();
            return d;
        }
        let answer = hello::ask(self.endpoint(), addr).await.ok();
        let name = answer.as_ref().map(|a| a.name.clone()).unwrap_or_default();
        Device {
            online: answer.is_some(),
            via: answer.and_then(|a| a.via),
            ..Device::stranger(key, name)
        }
    }

    /// The device `name` names: see [`pick`].
    pub fn device(&self, name: &str) -> Result<iroh::EndpointAddr> {
        let name = name.trim();
        // An id is an id, whatever a device calls itself.
        if let Ok(id) = name.parse::<EndpointId>() {
            return Ok(iroh::EndpointAddr::new(id));
        }
        if let Some((id, addr)) = name.split_once('@') {
            if let (Ok(id), Ok(addr)) = (
                id.parse::<EndpointId>(),
                addr.parse::<std::net::SocketAddr>(),
            ) {
                return Ok(iroh::EndpointAddr::new(id).with_ip_addr(addr));
            }
        }
        // Its addresses come from the endpoint's lookups (the address book, mDNS).
        pick(name, &self.contacts().list(), &self.nearby().list()).map(iroh::EndpointAddr::new)
    }
}

/// The device `name` names, among the contacts and the nearby devices, in this order:
///
/// 1. a contact by the start of its id (6 characters or more);
/// 2. a contact by the name the user gave it;
/// 3. a contact by the name it gives itself (renamed "Kitchen PC" to "Kitchen", "Kitchen PC"
///    is still that device; another contact calling itself "Kitchen PC" makes it ambiguous);
/// 4. a nearby device by the start of its id, then by the name it gives itself.
///
/// A contact's names are never a nearby stranger's: a device on the network cannot take a
/// contact's place by copying its name, and no device's name hides another's id. Two devices
/// answering to one name are an error that lists the start of each id, which step 1 or 4
/// accepts.
pub fn pick(
    name: &str,
    contacts: &[crate::contacts::Contact],
    nearby: &[crate::nearby::Found],
) -> Result<EndpointId> {
    let wanted = name.trim().to_lowercase();
    let by_prefix = wanted.len() >= 6;
    let one = |ids: Vec<EndpointId>, what: &str| -> Option<Result<EndpointId>> {
        let mut ids = ids;
        ids.sort();
        ids.dedup();
        match ids.as_slice() {
            [] => None,
            [id] => Some(Ok(*id)),
            many => {
                let short: Vec<String> =
                    many.iter().map(|id| id.to_string()[..10].into()).collect();
                Some(Err(Error::Config(format!(
                    "{} {what} are called {name:?} ({}); name one by its id",
                    many.len(),
                    short.join(", ")
                ))))
            }
        }
    };
    let contact_ids = |f: &dyn Fn(&crate::contacts::Contact) -> bool| -> Vec<EndpointId> {
        contacts
            .iter()
            .filter(|c| f(c))
            .filter_map(|c| c.id.parse().ok())
            .collect()
    };
    let near_ids = |f: &dyn Fn(&crate::nearby::Found) -> bool| -> Vec<EndpointId> {
        nearby.iter().filter(|d| f(d)).map(|d| d.id).collect()
    };
    let named = |n: &str| !n.is_empty() && n.to_lowercase() == wanted;
    // The steps of the doc above, in order; an id prefix counts from 6 characters.
    type Step<'a> = (bool, &'a dyn Fn() -> Vec<EndpointId>, &'a str);
    let steps: [Step; 5] = [
        (
            by_prefix,
            &|| contact_ids(&|c| c.id.starts_with(&wanted)),
            "devices",
        ),
        (
            true,
            &|| {
                contact_ids(&|c| {
                    c.alias
                        .as_deref()
                        .is_some_and(|a| a.to_lowercase() == wanted)
                })
            },
            "devices",
        ),
        (true, &|| contact_ids(&|c| named(&c.name)), "devices"),
        (
            by_prefix,
            &|| near_ids(&|d| d.id.to_string().starts_with(&wanted)),
            "nearby devices",
        ),
        (true, &|| near_ids(&|d| named(&d.name)), "nearby devices"),
    ];
    for (active, ids, what) in steps {
        if let Some(found) = active.then(ids).and_then(|ids| one(ids, what)) {
            return found;
        }
    }
    Err(Error::Config(format!(
        "no device is called {name:?}; see `ferry devices`, or give its node id"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{contacts::Contact, nearby::Found};

    fn id(n: u8) -> EndpointId {
        iroh::SecretKey::from_bytes(&[n; 32]).public()
    }

    fn contact(n: u8, name: &str, alias: Option<&str>) -> Contact {
        Contact {
            id: id(n).to_string(),
            name: name.into(),
            alias: alias.map(Into::into),
            seen_ms: 1,
            auto_accept: None,
        }
    }

    fn near(n: u8, name: &str) -> Found {
        Found {
            id: id(n),
            name: name.into(),
        }
    }

    #[test]
    fn a_stranger_nearby_cannot_take_a_contacts_name() {
        let contacts = [contact(1, "Kitchen PC", Some("Kitchen"))];
        // A stranger calls itself what the contact calls itself, and what the user calls it.
        let nearby = [near(2, "Kitchen PC"), near(3, "Kitchen"), near(4, "Beta")];
        assert_eq!(pick("kitchen", &contacts, &nearby).unwrap(), id(1));
        assert_eq!(pick("Kitchen PC", &contacts, &nearby).unwrap(), id(1));
        assert_eq!(pick("Beta", &contacts, &nearby).unwrap(), id(4));
        assert!(pick("Gamma", &contacts, &nearby).is_err());
    }

    #[test]
    fn two_devices_with_one_name_are_told_apart_by_the_start_of_their_ids() {
        // A stranger even calls itself by the start of the other's id.
        let short = |n: u8| id(n).to_string()[..10].to_string();
        let nearby = [near(5, "Beta"), near(6, "Beta"), near(7, &short(5))];
        let err = pick("beta", &[], &nearby).unwrap_err().to_string();
        assert!(err.contains(&short(5)) && err.contains(&short(6)), "{err}");
        assert_eq!(pick(&short(5), &[], &nearby).unwrap(), id(5));
        assert_eq!(pick(&short(6), &[], &nearby).unwrap(), id(6));
        let two = [contact(8, "Anna", None), contact(9, "Anna", None)];
        assert!(pick("Anna", &two, &[]).is_err());
        assert_eq!(pick(&id(9).to_string()[..10], &two, &[]).unwrap(), id(9));
    }

    #[test]
    fn a_contact_cannot_take_the_name_the_user_gave_another() {
        // The user calls A "Kitchen"; B, also a contact, calls itself "Kitchen", and C calls
        // itself by the start of A's id.
        let short_a = id(1).to_string()[..10].to_string();
        let contacts = [
            contact(1, "Kitchen PC", Some("Kitchen")),
            contact(2, "Kitchen", None),
            contact(3, &short_a, None),
        ];
        assert_eq!(pick("Kitchen", &contacts, &[]).unwrap(), id(1));
        assert_eq!(pick(&short_a, &contacts, &[]).unwrap(), id(1));
        // Its own name, once another contact claims it too, is ambiguous.
        let also = [
            contact(1, "Kitchen PC", Some("Kitchen")),
            contact(4, "Kitchen PC", None),
        ];
        assert!(pick("Kitchen PC", &also, &[]).is_err());
    }
}
