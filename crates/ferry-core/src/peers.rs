//! The address book: where peers were last reached, kept across restarts.
//!
//! Folder peers are dialled by node id. With relays and DNS lookup (the default), an id is
//! enough; on a network without them (a LAN with relays disabled, the tests) the node needs the
//! addresses it saw last time. Every peer a folder syncs with is recorded here (`peers.json`) and
//! fed to the endpoint's in-memory address lookup at start.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use iroh::{address_lookup::MemoryLookup, EndpointAddr, EndpointId};

use crate::atomic::write_atomic;

/// File in the home holding the address book.
pub const PEERS_FILE: &str = "peers.json";

/// Known peer addresses. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AddressBook {
    path: PathBuf,
    lookup: MemoryLookup,
    known: Arc<Mutex<BTreeMap<String, EndpointAddr>>>,
}

impl AddressBook {
    /// Loads the book of `home` into a fresh lookup.
    pub fn load(home: &std::path::Path) -> AddressBook {
        let path = home.join(PEERS_FILE);
        let known: BTreeMap<String, EndpointAddr> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let lookup = MemoryLookup::new();
        for addr in known.values() {
            lookup.add_endpoint_info(addr.clone());
        }
        AddressBook {
            path,
            lookup,
            known: Arc::new(Mutex::new(known)),
        }
    }

    /// The lookup to give the endpoint.
    pub fn lookup(&self) -> MemoryLookup {
        self.lookup.clone()
    }

    /// Records where a peer can be reached (ignores an address with nothing to dial).
    pub fn remember(&self, addr: EndpointAddr) {
        if addr.is_empty() {
            return;
        }
        self.lookup.add_endpoint_info(addr.clone());
        let bytes = {
            let mut known = self.known.lock().expect("book lock");
            if known.get(&addr.id.to_string()) == Some(&addr) {
                return;
            }
            known.insert(addr.id.to_string(), addr);
            serde_json::to_vec_pretty(&*known).expect("serializable")
        };
        if let Err(e) = write_atomic(&self.path, &bytes) {
            tracing::warn!("cannot save {}: {e}", self.path.display());
        }
    }

    /// Records the addresses the endpoint currently knows for `id`.
    pub async fn remember_seen(&self, endpoint: &iroh::Endpoint, id: EndpointId) {
        if let Some(info) = endpoint.remote_info(id).await {
            let addr = EndpointAddr::from_parts(id, info.into_addrs().map(|a| a.into_addr()));
            self.remember(addr);
        }
    }
}
