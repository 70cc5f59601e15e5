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
        for c in self.contacts().list() {
            all.insert(
                c.id.clone(),
                Device {
                    name: c.shown_name().to_string(),
                    claimed: c.name.clone(),
                    id: c.id,
                    contact: true,
                    nearby: false,
                    online: false,
                    via: None,
                    auto_accept: c.auto_accept,
                    seen_ms: c.seen_ms,
                },
            );
        }
        for f in self.nearby().list() {
            let d = all.entry(f.id.to_string()).or_insert_with(|| Device {
                id: f.id.to_string(),
                name: f.name.clone(),
                claimed: f.name.clone(),
                contact: false,
                nearby: false,
                online: false,
                via: None,
                auto_accept: None,
                seen_ms: 0,
            });
            d.nearby = true;
            d.online = true;
        }
        let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(PROBING));
        let mut looks = tokio::task::JoinSet::new();
        for d in all.into_values() {
            let (endpoint, turns) = (self.endpoint().clone(), turns.clone());
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

    /// The device `name` names: a node id (optionally with `@ip:port` where it can be
    /// reached), else a contact by its shown name, else a nearby device by the name it
    /// gives itself. A contact's name wins over a nearby device claiming the same one: a
    /// stranger on the network cannot take a contact's place by copying its name.
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
        let contact = match self.contacts().one(name) {
            Ok(contact) => contact,
            Err(not_one) => {
                if !self.contacts().find(name).is_empty() {
                    return Err(not_one);
                }
                let wanted = name.to_lowercase();
                let near: Vec<_> = self
                    .nearby()
                    .list()
                    .into_iter()
                    .filter(|f| !f.name.is_empty() && f.name.to_lowercase() == wanted)
                    .collect();
                return match near.as_slice() {
                    // Its addresses come from mDNS (the endpoint's lookup).
                    [one] => Ok(iroh::EndpointAddr::new(one.id)),
                    [] => Err(not_one),
                    many => {
                        let ids: Vec<String> = many
                            .iter()
                            .map(|f| f.id.to_string()[..10].to_string())
                            .collect();
                        Err(Error::Config(format!(
                            "{} nearby devices are called {name:?} ({}); name one by its id",
                            many.len(),
                            ids.join(", ")
                        )))
                    }
                };
            }
        };
        let id: EndpointId = contact.id.parse().map_err(|_| {
            Error::Config(format!(
                "the device {name:?} has no valid node id in the contacts"
            ))
        })?;
        // Its addresses come from the address book (the endpoint's lookup).
        Ok(iroh::EndpointAddr::new(id))
    }
}
