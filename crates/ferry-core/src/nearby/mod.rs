//! Nearby devices: Ferry nodes on the same local network, found over mDNS with no relay, no
//! DNS and no internet at all.
//!
//! The node advertises itself under the mDNS service `_ferry._udp.local` (iroh's mDNS address
//! lookup with a service name of Ferry's own, so other iroh programs on the network neither see
//! it nor are seen) and listens for the others. What mDNS carries is the node id and its
//! addresses, never the device name: the only way to carry more through iroh's lookup is its
//! user data, which iroh also publishes to every other lookup (the public pkarr/DNS servers
//! with the default relays). A device's name is asked for instead over [`hello`], at the
//! addresses mDNS gave, when the device appears.
//!
//! An announcement is anyone's claim: a device is listed only once it answered a hello over a
//! direct path, whose QUIC handshake proves it holds the id it announced. One that has not
//! answered is asked again every few seconds, one that has every minute (and is unlisted if
//! it no longer answers), and each is forgotten when mDNS expires it.
//!
//! "Visible to nearby devices" (the settings) off: this node stops advertising, and asks only
//! its contacts (asking reveals the asker), so it finds its contacts nearby but no stranger;
//! its hello tells its name only to contacts.
//!
//! A node bound to loopback (every test and benchmark) never starts mDNS: multicast would
//! leave the machine.

pub mod hello;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, Weak,
    },
    time::{Duration, Instant},
};

use iroh::{
    address_lookup::{AddressLookup, EndpointData, Error as LookupError, Item},
    Endpoint, EndpointAddr, EndpointId,
};
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
use n0_future::{boxed::BoxStream, StreamExt};

use crate::contacts::Contacts;

/// The mDNS service name: `_ferry._udp.local`.
pub const SERVICE: &str = "ferry";
/// Nearby devices kept at most, answered or not (a network full of hostile announcements
/// holds no more).
pub const MAX_NEARBY: usize = 256;
/// How often mDNS asks who is there (plus a random delay; an answer seen from another node
/// counts as our own). A device that stops answering expires after about three rounds.
const CADENCE: Duration = Duration::from_secs(2);
/// Devices asked their name at once.
const ASKING: usize = 8;
/// A device that did not answer is asked again after this long.
const RETRY: Duration = Duration::from_secs(10);
/// A device that answered is asked again after this long; listed no more if it fails.
const RECHECK: Duration = Duration::from_secs(60);

/// A device found on the local network, which answered as the id it announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its node id.
    pub id: EndpointId,
    /// The name it told (cleaned; empty if it would not say).
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
    /// Whether mDNS is wanted (started and not stopped), even while a restart failed.
    on: AtomicBool,
    /// The running mDNS service, if any; replaced when visibility changes. Held while it is
    /// replaced, so two changes at once end with the service matching the last.
    mdns: Mutex<Option<Running>>,
    /// What the endpoint last published about itself.
    published: Mutex<Option<EndpointData>>,
    found: Mutex<BTreeMap<EndpointId, Seen>>,
    /// Which mDNS service is the current one: a replaced one's late news is ignored.
    generation: std::sync::atomic::AtomicU64,
    contacts: Contacts,
}

#[derive(Debug)]
struct Running {
    mdns: MdnsAddressLookup,
    _watch: n0_future::task::AbortOnDropHandle<()>,
}

/// What this node knows of a device mDNS announced.
#[derive(Debug, Clone)]
struct Seen {
    /// Where mDNS says it is.
    addr: EndpointAddr,
    /// The name it told, once it answered.
    name: String,
    /// It answered a hello as this id.
    answered: bool,
    /// A hello to it is under way.
    asking: bool,
    /// When it was last asked.
    asked: Option<Instant>,
}

impl Nearby {
    /// Nearby devices off: nothing is advertised or found (a node bound to loopback, a
    /// one-shot command).
    pub fn off(visible: bool, contacts: Contacts) -> Nearby {
        Nearby {
            inner: Arc::new(Inner {
                visible: AtomicBool::new(visible),
                on: AtomicBool::new(false),
                mdns: Mutex::new(None),
                published: Mutex::new(None),
                found: Mutex::new(BTreeMap::new()),
                generation: Default::default(),
                contacts,
            }),
        }
    }

    /// Starts finding nearby devices for `endpoint` (advertising it if `visible`).
    pub fn start(
        endpoint: &Endpoint,
        visible: bool,
        contacts: Contacts,
    ) -> crate::error::Result<Nearby> {
        let nearby = Nearby::off(visible, contacts);
        nearby.inner.on.store(true, Ordering::Relaxed);
        {
            let mut slot = nearby.inner.mdns.lock().expect("nearby lock");
            *slot = Some(nearby.run(endpoint)?);
        }
        endpoint
            .address_lookup()
            .map_err(|e| crate::error::Error::Network(e.to_string()))?
            .add(Lookup(Arc::downgrade(&nearby.inner)));
        Ok(nearby)
    }

    /// A new mDNS service with the current visibility, following what it finds.
    fn run(&self, endpoint: &Endpoint) -> crate::error::Result<Running> {
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
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let watch = tokio::spawn(watch(
            Arc::downgrade(&self.inner),
            generation,
            mdns.clone(),
            endpoint.clone(),
        ));
        Ok(Running {
            mdns,
            _watch: n0_future::task::AbortOnDropHandle::new(watch),
        })
    }

    /// True if mDNS is wanted (it may be restarting).
    pub fn is_on(&self) -> bool {
        self.inner.on.load(Ordering::Relaxed)
    }

    /// Whether this node shows itself to nearby devices.
    pub fn visible(&self) -> bool {
        self.inner.visible.load(Ordering::Relaxed)
    }

    /// Shows or hides this node from nearby devices. Announcing stops at once; devices that
    /// saw this one forget it when their mDNS expires it (seconds). A service that cannot be
    /// restarted is tried again at the next change.
    pub fn set_visible(&self, endpoint: &Endpoint, visible: bool) -> crate::error::Result<()> {
        let mut slot = self.inner.mdns.lock().expect("nearby lock");
        let changed = self.inner.visible.swap(visible, Ordering::Relaxed) != visible;
        if !self.is_on() || (!changed && slot.is_some()) {
            return Ok(());
        }
        // A service cannot stop advertising once started: a new one replaces it.
        slot.take();
        // The new service finds the devices again; one that left meanwhile would never expire.
        self.inner.found.lock().expect("nearby lock").clear();
        *slot = Some(self.run(endpoint)?);
        Ok(())
    }

    /// Stops mDNS for good (the node shuts down).
    pub fn stop(&self) {
        self.inner.on.store(false, Ordering::Relaxed);
        self.inner.mdns.lock().expect("nearby lock").take();
        self.inner.found.lock().expect("nearby lock").clear();
    }

    /// The devices found that answered as the id they announced, by id.
    pub fn list(&self) -> Vec<Found> {
        let found = self.inner.found.lock().expect("nearby lock");
        found
            .iter()
            .filter(|(_, s)| s.answered)
            .map(|(id, s)| Found {
                id: *id,
                name: s.name.clone(),
            })
            .collect()
    }
}

impl Inner {
    fn visible(&self) -> bool {
        self.visible.load(Ordering::Relaxed)
    }

    /// True while `generation` is the running service's.
    fn current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Relaxed) == generation
    }

    /// Records where mDNS says a device is. When the list is full, an unanswered device that
    /// failed to answer makes room: announcements that never answer cannot crowd out the
    /// devices that do.
    fn arrive(&self, addr: EndpointAddr) {
        let mut found = self.found.lock().expect("nearby lock");
        if let Some(seen) = found.get_mut(&addr.id) {
            seen.addr = addr;
            return;
        }
        if found.len() >= MAX_NEARBY {
            let failed = found
                .iter()
                .filter(|(_, s)| !s.answered && !s.asking && s.asked.is_some())
                .min_by_key(|(_, s)| s.asked)
                .map(|(id, _)| *id);
            if let Some(id) = failed {
                found.remove(&id);
            }
        }
        if found.len() < MAX_NEARBY {
            let seen = Seen {
                addr: addr.clone(),
                name: String::new(),
                answered: false,
                asking: false,
                asked: None,
            };
            found.insert(addr.id, seen);
        }
    }

    /// Up to `room` devices to ask now: not answered yet, not being asked, not asked lately,
    /// and, while this node is hidden, only its contacts.
    fn to_ask(&self, room: usize) -> Vec<EndpointAddr> {
        let visible = self.visible();
        let mut found = self.found.lock().expect("nearby lock");
        let now = Instant::now();
        let mut out = Vec::new();
        for (id, seen) in found.iter_mut() {
            if out.len() >= room {
                break;
            }
            let since = seen.asked.map(|t| now.duration_since(t));
            // An ask that never reported back (its task failed) counts as done.
            let stuck = seen.asking && since.is_some_and(|s| s >= hello::ASK_FOR * 2);
            let wait = if seen.answered { RECHECK } else { RETRY };
            let due = since.is_none_or(|s| s >= wait);
            if (seen.asking && !stuck) || !due {
                continue;
            }
            if !visible && self.contacts.get(&id.to_string()).is_none() {
                continue;
            }
            seen.asking = true;
            seen.asked = Some(now);
            out.push(seen.addr.clone());
        }
        out
    }

    /// What asking `id` brought: its name (it answered directly, so it is on this network),
    /// or nothing (listed no more until it answers again).
    fn answered(&self, id: EndpointId, name: Option<String>) {
        if let Some(seen) = self.found.lock().expect("nearby lock").get_mut(&id) {
            seen.asking = false;
            seen.answered = name.is_some();
            if let Some(name) = name {
                seen.name = name;
            }
        }
    }

    fn leave(&self, id: &EndpointId) {
        self.found.lock().expect("nearby lock").remove(id);
    }
}

/// Follows what mDNS finds: a new device is asked its name (at the addresses announced, so
/// no other lookup learns of it), again later if it did not answer; an expired one leaves.
/// Ends when its service is replaced or the node goes.
async fn watch(inner: Weak<Inner>, generation: u64, mdns: MdnsAddressLookup, endpoint: Endpoint) {
    let mut events = mdns.subscribe().await;
    let mut asks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(inner) = inner.upgrade() else { return };
                if !inner.current(generation) {
                    return;
                }
                match event {
                    Some(DiscoveryEvent::Discovered { endpoint_info, .. }) => {
                        inner.arrive(endpoint_info.into_endpoint_addr());
                    }
                    Some(DiscoveryEvent::Expired { endpoint_id }) => inner.leave(&endpoint_id),
                    Some(_) => {}
                    None => return,
                }
            }
            Some(done) = asks.join_next(), if !asks.is_empty() => {
                let Some(inner) = inner.upgrade() else { return };
                if let (Ok((id, name)), true) = (done, inner.current(generation)) {
                    inner.answered(id, name);
                }
            }
            _ = tick.tick() => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        if !inner.current(generation) {
            return;
        }
        for addr in inner.to_ask(ASKING.saturating_sub(asks.len())) {
            let endpoint = endpoint.clone();
            asks.spawn(async move {
                let id = addr.id;
                match hello::ask(&endpoint, addr).await {
                    // Nearby means on this network: an answer through a relay does not count.
                    Ok(answer) if answer.via == Some(crate::progress::Via::Direct) => {
                        (id, Some(answer.name))
                    }
                    Ok(_) => (id, None),
                    Err(e) => {
                        tracing::debug!("nearby {}: {e}", id.fmt_short());
                        (id, None)
                    }
                }
            });
        }
    }
}

/// The address lookup the endpoint sees: forwards to the running mDNS service, and keeps
/// what the endpoint publishes so that a restarted service advertises it again. Only
/// addresses are passed on: nothing else of this node goes out over mDNS.
#[derive(Debug)]
struct Lookup(Weak<Inner>);

impl AddressLookup for Lookup {
    fn publish(&self, data: &EndpointData) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let mut only = EndpointData::new(data.addrs().cloned().collect());
        only.set_user_data(None);
        *inner.published.lock().expect("nearby lock") = Some(only.clone());
        let running = inner.mdns.lock().expect("nearby lock");
        if let Some(running) = &*running {
            running.mdns.publish(&only);
        }
    }

    /// What mDNS finds for a lookup also counts as found: the service tells its subscribers
    /// only of devices nobody is looking up at that moment, and an unchanged announcement
    /// only once.
    fn resolve(&self, id: EndpointId) -> Option<BoxStream<Result<Item, LookupError>>> {
        let stream = {
            let inner = self.0.upgrade()?;
            let running = inner.mdns.lock().expect("nearby lock");
            running.as_ref()?.mdns.resolve(id)?
        };
        let weak = self.0.clone();
        Some(Box::pin(stream.inspect(move |item| {
            if let (Ok(item), Some(inner)) = (item, weak.upgrade()) {
                inner.arrive(item.to_endpoint_addr());
            }
        })))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> EndpointAddr {
        EndpointAddr::new(iroh::SecretKey::from_bytes(&[n; 32]).public())
    }

    #[test]
    fn only_devices_that_answered_are_listed_and_a_hidden_node_asks_only_contacts() {
        let dir = tempfile::tempdir().unwrap();
        let contacts = Contacts::load(dir.path());
        let nearby = Nearby::off(true, contacts.clone());
        let inner = &nearby.inner;
        for n in 1..=3 {
            inner.arrive(addr(n));
        }
        assert!(
            nearby.list().is_empty(),
            "an announcement alone lists nothing"
        );
        let asked = inner.to_ask(2);
        assert_eq!(asked.len(), 2);
        // Being asked, or asked lately: not asked again.
        assert_eq!(inner.to_ask(8).len(), 1);
        assert!(inner.to_ask(8).is_empty());
        inner.answered(asked[0].id, Some("Alpha".into()));
        inner.answered(asked[1].id, None);
        let listed = nearby.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].id, listed[0].name.as_str()),
            (asked[0].id, "Alpha")
        );
        assert!(inner.to_ask(8).is_empty(), "no retry before {RETRY:?}");
        // An answered device that fails a later ask is listed no more.
        inner.answered(asked[0].id, None);
        assert!(nearby.list().is_empty());
        inner.answered(asked[0].id, Some("Alpha".into()));

        // Hidden: strangers are not asked; contacts are.
        nearby.inner.visible.store(false, Ordering::Relaxed);
        inner.arrive(addr(4));
        inner.arrive(addr(5));
        assert!(inner.to_ask(8).is_empty());
        contacts.seen(&addr(5).id.to_string(), "Five").unwrap();
        let asked: Vec<_> = inner.to_ask(8).into_iter().map(|a| a.id).collect();
        assert_eq!(asked, vec![addr(5).id]);

        // Expired: gone.
        inner.leave(&addr(1).id);
        inner.leave(&listed[0].id);
        assert!(nearby.list().is_empty());
    }

    #[test]
    fn a_flood_of_announcements_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let nearby = Nearby::off(true, Contacts::load(dir.path()));
        for n in 0..(MAX_NEARBY + 50) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(n as u64 + 1).to_le_bytes());
            nearby.inner.arrive(EndpointAddr::new(
                iroh::SecretKey::from_bytes(&key).public(),
            ));
        }
        assert_eq!(nearby.inner.found.lock().unwrap().len(), MAX_NEARBY);
        let asked = nearby.inner.to_ask(1000);
        assert_eq!(asked.len(), MAX_NEARBY);
        // None answered: a real device still finds room, in place of one that failed.
        for a in &asked {
            nearby.inner.answered(a.id, None);
        }
        let real = EndpointAddr::new(iroh::SecretKey::from_bytes(&[200; 32]).public());
        nearby.inner.arrive(real.clone());
        assert!(nearby.inner.found.lock().unwrap().contains_key(&real.id));
        assert_eq!(nearby.inner.found.lock().unwrap().len(), MAX_NEARBY);
    }
}
