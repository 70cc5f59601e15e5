//! Nearby devices: Ferry nodes on the same local network, found over mDNS with no relay, no
//! DNS and no internet at all.
//!
//! The node advertises itself under the mDNS service `_ferry._udp.local` (iroh's mDNS address
//! lookup with a service name of Ferry's own, so other iroh programs on the network neither see
//! it nor are seen) and listens for the others. What mDNS carries is the node id and its
//! addresses, never the device name: the only way to carry more through iroh's lookup is its
//! user data, which iroh also publishes to every other lookup (the public pkarr/DNS servers
//! with the default relays). A device's name is asked for instead over [`hello`], once, when
//! the device appears.
//!
//! "Visible to nearby devices" (the settings) off: this node stops advertising but still
//! finds the others, and it tells its name only to its contacts.
//!
//! A node bound to loopback (every test and benchmark) never starts mDNS: multicast would
//! leave the machine.

pub mod hello;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use iroh::{
    address_lookup::{AddressLookup, EndpointData, Error as LookupError, Item},
    Endpoint, EndpointId,
};
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
use n0_future::{boxed::BoxStream, StreamExt};

/// The mDNS service name: `_ferry._udp.local`.
pub const SERVICE: &str = "ferry";
/// Nearby devices kept at most (a network full of hostile announcements holds no more).
pub const MAX_NEARBY: usize = 256;
/// How often mDNS asks who is there (plus a random delay; an answer seen from another node
/// counts as our own). Devices that stop answering expire after a few rounds.
const CADENCE: Duration = Duration::from_secs(2);
/// Names asked for at once.
const ASKING: usize = 8;

/// A device found on the local network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its node id.
    pub id: EndpointId,
    /// The name it told (cleaned; empty until it answered, or if it would not say).
    pub name: String,
}

/// The nearby devices of a node and its mDNS presence. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Nearby {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Whether this node advertises itself (the "Visible to nearby devices" setting).
    visible: AtomicBool,
    /// The running mDNS service, if any; replaced when visibility changes.
    mdns: Mutex<Option<Running>>,
    /// What the endpoint last published about itself.
    published: Mutex<Option<EndpointData>>,
    found: Mutex<BTreeMap<EndpointId, Found>>,
    /// Bumped whenever the list changes.
    changed: tokio::sync::watch::Sender<u64>,
    asking: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug)]
struct Running {
    mdns: MdnsAddressLookup,
    _watch: n0_future::task::AbortOnDropHandle<()>,
}

impl Nearby {
    /// Nearby devices off: nothing is advertised or found (a node bound to loopback, a
    /// one-shot command).
    pub fn off(visible: bool) -> Nearby {
        Nearby {
            inner: Arc::new(Inner {
                visible: AtomicBool::new(visible),
                mdns: Mutex::new(None),
                published: Mutex::new(None),
                found: Mutex::new(BTreeMap::new()),
                changed: tokio::sync::watch::Sender::new(0),
                asking: Arc::new(tokio::sync::Semaphore::new(ASKING)),
            }),
        }
    }

    /// Starts finding nearby devices for `endpoint` (advertising it if `visible`).
    pub fn start(endpoint: &Endpoint, visible: bool) -> crate::error::Result<Nearby> {
        let nearby = Nearby::off(visible);
        nearby.run(endpoint)?;
        let lookup = Lookup(nearby.clone());
        endpoint
            .address_lookup()
            .map_err(|e| crate::error::Error::Network(e.to_string()))?
            .add(lookup);
        Ok(nearby)
    }

    /// (Re)starts the mDNS service with the current visibility.
    fn run(&self, endpoint: &Endpoint) -> crate::error::Result<()> {
        let visible = self.visible();
        let mdns = MdnsAddressLookup::builder()
            .service_name(SERVICE)
            .advertise(visible)
            .discovery_cadence(CADENCE)
            .build(endpoint.id())
            .map_err(|e| {
                crate::error::Error::Network(format!("cannot look for nearby devices: {e}"))
            })?;
        if visible {
            if let Some(data) = self.inner.published.lock().expect("nearby lock").clone() {
                mdns.publish(&data);
            }
        }
        let watch = n0_future::task::AbortOnDropHandle::new(tokio::spawn(watch(
            self.clone(),
            mdns.clone(),
            endpoint.clone(),
        )));
        *self.inner.mdns.lock().expect("nearby lock") = Some(Running {
            mdns,
            _watch: watch,
        });
        Ok(())
    }

    /// True if mDNS runs.
    pub fn is_on(&self) -> bool {
        self.inner.mdns.lock().expect("nearby lock").is_some()
    }

    /// Whether this node shows itself to nearby devices.
    pub fn visible(&self) -> bool {
        self.inner.visible.load(Ordering::Relaxed)
    }

    /// Shows or hides this node from nearby devices, at once.
    pub fn set_visible(&self, endpoint: &Endpoint, visible: bool) -> crate::error::Result<()> {
        if self.inner.visible.swap(visible, Ordering::Relaxed) == visible || !self.is_on() {
            return Ok(());
        }
        // The service cannot stop advertising once started: a new one replaces it (the old
        // one's announcements stop when it drops).
        self.inner.mdns.lock().expect("nearby lock").take();
        // The new service finds the devices again; one that left meanwhile would never expire.
        self.inner.found.lock().expect("nearby lock").clear();
        self.bump();
        self.run(endpoint)
    }

    /// The devices found, by id.
    pub fn list(&self) -> Vec<Found> {
        let found = self.inner.found.lock().expect("nearby lock");
        found.values().cloned().collect()
    }

    /// The device `id`, if it is nearby.
    pub fn get(&self, id: &EndpointId) -> Option<Found> {
        self.inner
            .found
            .lock()
            .expect("nearby lock")
            .get(id)
            .cloned()
    }

    /// Changes whenever a device comes, goes or tells its name.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    fn bump(&self) {
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records a device mDNS found; true if it is new.
    fn arrive(&self, id: EndpointId) -> bool {
        let mut found = self.inner.found.lock().expect("nearby lock");
        if found.contains_key(&id) || found.len() >= MAX_NEARBY {
            return false;
        }
        found.insert(
            id,
            Found {
                id,
                name: String::new(),
            },
        );
        true
    }

    fn named(&self, id: EndpointId, name: String) {
        if let Some(f) = self.inner.found.lock().expect("nearby lock").get_mut(&id) {
            f.name = name;
        }
        self.bump();
    }

    fn leave(&self, id: &EndpointId) {
        if self
            .inner
            .found
            .lock()
            .expect("nearby lock")
            .remove(id)
            .is_some()
        {
            self.bump();
        }
    }
}

/// Follows what mDNS finds: a new device is asked its name, an expired one leaves.
async fn watch(nearby: Nearby, mdns: MdnsAddressLookup, endpoint: Endpoint) {
    let mut events = mdns.subscribe().await;
    while let Some(event) = events.next().await {
        match event {
            DiscoveryEvent::Discovered { endpoint_info, .. } => {
                let id = endpoint_info.endpoint_id;
                if !nearby.arrive(id) {
                    continue;
                }
                nearby.bump();
                let (nearby, endpoint) = (nearby.clone(), endpoint.clone());
                let asking = nearby.inner.asking.clone();
                tokio::spawn(async move {
                    let Ok(_turn) = asking.acquire_owned().await else {
                        return;
                    };
                    match hello::ask(&endpoint, iroh::EndpointAddr::new(id)).await {
                        Ok(answer) => nearby.named(id, answer.name),
                        Err(e) => tracing::debug!("nearby {}: no name: {e}", id.fmt_short()),
                    }
                });
            }
            DiscoveryEvent::Expired { endpoint_id } => nearby.leave(&endpoint_id),
            _ => {}
        }
    }
}

/// The address lookup the endpoint sees: forwards to the running mDNS service, and keeps
/// what the endpoint publishes so that a restarted service advertises it again. Only
/// addresses are passed on: nothing else of this node goes out over mDNS.
#[derive(Debug)]
struct Lookup(Nearby);

impl AddressLookup for Lookup {
    fn publish(&self, data: &EndpointData) {
        let mut only = EndpointData::new(data.addrs().cloned().collect());
        only.set_user_data(None);
        *self.0.inner.published.lock().expect("nearby lock") = Some(only.clone());
        if let Some(running) = &*self.0.inner.mdns.lock().expect("nearby lock") {
            running.mdns.publish(&only);
        }
    }

    fn resolve(&self, id: EndpointId) -> Option<BoxStream<Result<Item, LookupError>>> {
        let running = self.0.inner.mdns.lock().expect("nearby lock");
        running.as_ref()?.mdns.resolve(id)
    }
}

impl crate::node::Node {
    /// The devices found on the local network.
    pub fn nearby(&self) -> &Nearby {
        &self.inner.nearby
    }

    /// Shows or hides this device from nearby devices.
    pub fn set_visible(&self, visible: bool) -> crate::error::Result<()> {
        self.inner.nearby.set_visible(self.endpoint(), visible)
    }
}
