//! Taking part in one share's swarm while receiving it: the pieces already here are served to
//! the share's other receivers, and they are found and connected to, so that large files come
//! from all of them at once ([`download`](super::download)).
//!
//! Every few seconds the sender (and every peer met) is asked for the members it knows
//! ([`members`]); a new member is greeted (which opens the share to this node
//! on its side) and connected to over the blobs protocol (its provider serves its receive's
//! store, see [`serve`](super::serve)). At most [`MAX_PEERS`] peers besides
//! the sender are used. A sender that does not speak the member protocol (sendme, an older
//! Ferry) simply leaves the receive with the sender alone.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use iroh::{endpoint::Connection, Endpoint, EndpointAddr, EndpointId};
use iroh_blobs::{api::Store, Hash};
use tokio::sync::{broadcast, mpsc};

use super::{
    download::Source,
    members::{self, About, Contact, Members, MembersGuard},
    serve::{StoreGuard, Stores},
};
use crate::registry::{Registry, ShareGuard};

/// Peers used besides the sender.
pub const MAX_PEERS: usize = 16;

/// How often members are asked for the members they know: often while a swarm forms (the
/// receivers of one ticket usually start within seconds of each other), then less.
const EXCHANGE_EVERY: Duration = Duration::from_secs(2);
const EXCHANGE_FIRST: Duration = Duration::from_millis(300);
const FIRST_ROUNDS: u32 = 15;

/// How long a member that could not be reached is left alone.
const RETRY_FAILED: Duration = Duration::from_secs(60);

/// How long connecting to a member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// This node's part in a share's swarm; leaving it (dropping) stops serving and finding.
pub struct ShareSwarm {
    endpoint: Endpoint,
    root: Hash,
    sender: EndpointAddr,
    sources: Arc<Mutex<Vec<Source>>>,
    new: broadcast::Sender<Source>,
    /// What this node tells the sender of itself (its name, its progress).
    about: Arc<Mutex<About>>,
    task: tokio::task::JoinHandle<()>,
    // Dropped in this order: the share leaves the registry before its store stops being
    // served, so no request is admitted for a store that is gone.
    _share: ShareGuard,
    _members: MembersGuard,
    _served: StoreGuard,
}

impl Drop for ShareSwarm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the node lends a swarm.
pub struct Parts<'a> {
    /// The node's endpoint.
    pub endpoint: &'a Endpoint,
    /// The share registry (a received share is served like a sent one, to its holders).
    pub registry: &'a Registry,
    /// The stores served to swarms.
    pub stores: &'a Stores,
    /// The member lists.
    pub members: &'a Members,
    /// This device's name, told to the sender.
    pub name: String,
}

impl ShareSwarm {
    /// Joins the swarm of the share `root`, whose blobs (`hashes`, with the payload `sizes`
    /// of its files) are being received into `store` from the sender at `sender` (connected
    /// over `sender_conn`, the blobs protocol).
    pub fn start(
        parts: Parts<'_>,
        root: Hash,
        hashes: Vec<Hash>,
        sizes: Vec<u64>,
        store: &Store,
        sender: EndpointAddr,
        sender_conn: Connection,
    ) -> ShareSwarm {
        let served = parts
            .stores
            .add(root, store.clone(), hashes.iter().copied(), None);
        let (events, _) = mpsc::unbounded_channel();
        let share = parts.registry.add(root, hashes, sizes, events);
        let joined = parts.members.join(root);
        let sources = Arc::new(Mutex::new(vec![Source {
            id: sender.id,
            conn: sender_conn,
            seed: true,
        }]));
        let (new, _) = broadcast::channel(64);
        let sender_addr = sender.clone();
        let about = Arc::new(Mutex::new(About {
            name: Some(parts.name),
            ..Default::default()
        }));
        let task = tokio::spawn(find_peers(
            parts.endpoint.clone(),
            parts.members.clone(),
            root,
            sender,
            sources.clone(),
            new.clone(),
            about.clone(),
        ));
        ShareSwarm {
            endpoint: parts.endpoint.clone(),
            root,
            sender: sender_addr,
            sources,
            new,
            about,
            task,
            _share: share,
            _members: joined,
            _served: served,
        }
    }

    /// Notes this node's progress (`done` of `total` bytes, `from_sender` of them from the
    /// sender), told to the sender at the next exchange: its view of each receiver.
    pub fn set_progress(&self, done: u64, total: u64, from_sender: u64) {
        let mut about = self.about.lock().expect("about lock");
        about.progress = Some((done, total));
        about.from_you = Some(from_sender);
    }

    /// Tells the sender this node has the whole share (`total` bytes): its view of who has
    /// everything, as a download of the whole collection from it would have told it.
    pub async fn report_done(&self, total: u64) {
        let Some(conn) = connect(&self.endpoint, self.sender.clone(), members::ALPN).await else {
            return;
        };
        let me = Contact::of(&self.endpoint.addr());
        let about = {
            let mut about = self.about.lock().expect("about lock").clone();
            about.progress = Some((total, total));
            about
        };
        if let Err(e) = members::exchange(&conn, self.root, me, about).await {
            tracing::debug!("telling the sender the receive is done: {e}");
        }
    }

    /// The peers to fetch from now, and the ones found from now on.
    pub fn sources(&self) -> (Vec<Source>, mpsc::UnboundedReceiver<Source>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut later = self.new.subscribe();
        let now = self.sources.lock().expect("sources lock").clone();
        tokio::spawn(async move {
            while let Ok(s) = later.recv().await {
                if tx.send(s).is_err() {
                    break;
                }
            }
        });
        (now, rx)
    }
}

/// Asks the sender and the peers met for members, and connects to new ones.
async fn find_peers(
    endpoint: Endpoint,
    members: Members,
    root: Hash,
    sender: EndpointAddr,
    sources: Arc<Mutex<Vec<Source>>>,
    new: broadcast::Sender<Source>,
    about: Arc<Mutex<About>>,
) {
    let me = endpoint.id();
    // Only the sender learns this node's name and progress.
    let named = About::default();
    // Peers connected (and the sender): never dialled again.
    let mut greeted: HashSet<EndpointId> = HashSet::from([sender.id]);
    greeted.insert(me);
    // Peers that could not be reached, and when: tried again after a while.
    let mut failed: std::collections::HashMap<EndpointId, std::time::Instant> = Default::default();
    // The sender is asked again and again (reconnected if its connection drops); the peers
    // met are asked while their connection lasts.
    let mut to_sender: Option<Connection> = None;
    let mut askable: Vec<Connection> = Vec::new();
    let mut round = 0u32;
    loop {
        if round > 0 {
            let every = if round < FIRST_ROUNDS {
                EXCHANGE_FIRST
            } else {
                EXCHANGE_EVERY
            };
            tokio::time::sleep(every).await;
        }
        round += 1;
        let contact = Contact::of(&endpoint.addr());
        let mut found: Vec<Contact> = Vec::new();
        let sender_waits = failed
            .get(&sender.id)
            .is_some_and(|at| at.elapsed() < RETRY_FAILED);
        if to_sender
            .as_ref()
            .is_none_or(|c| c.close_reason().is_some())
            && !sender_waits
        {
            to_sender = connect(&endpoint, sender.clone(), members::ALPN).await;
            if to_sender.is_none() {
                tracing::debug!("the sender does not introduce receivers (now)");
                failed.insert(sender.id, std::time::Instant::now());
            }
        }
        if let Some(conn) = &to_sender {
            let told = about.lock().expect("about lock").clone();
            match members::exchange(conn, root, contact.clone(), told).await {
                Ok(list) => found.extend(list.unwrap_or_default()),
                Err(e) => tracing::debug!("member exchange with the sender: {e}"),
            }
        }
        let mut alive = Vec::new();
        for conn in askable.drain(..) {
            if let Ok(list) = members::exchange(&conn, root, contact.clone(), named.clone()).await {
                found.extend(list.unwrap_or_default());
                alive.push(conn);
            }
        }
        askable = alive;
        // Members that greeted this node are candidates too.
        found.extend(members.list(root));
        // A peer whose connection ended frees its place (and may be met again).
        let mut peers = {
            let mut sources = sources.lock().expect("sources lock");
            for s in sources.iter().filter(|s| s.conn.close_reason().is_some()) {
                greeted.remove(&s.id);
            }
            sources.retain(|s| s.conn.close_reason().is_none() || s.seed);
            sources.len().saturating_sub(1)
        };
        failed.retain(|_, at| at.elapsed() < RETRY_FAILED);
        for c in found {
            if peers >= MAX_PEERS {
                break;
            }
            let Some(addr) = c.addr() else { continue };
            let recently_failed = failed
                .get(&addr.id)
                .is_some_and(|at| at.elapsed() < RETRY_FAILED);
            if addr.id == me || greeted.contains(&addr.id) || recently_failed {
                continue;
            }
            let (Some(hello), Some(blobs)) = (
                connect(&endpoint, addr.clone(), members::ALPN).await,
                connect(&endpoint, addr.clone(), iroh_blobs::ALPN).await,
            ) else {
                failed.insert(addr.id, std::time::Instant::now());
                continue;
            };
            // Greeting opens the share to this node on the peer's side.
            if members::exchange(&hello, root, contact.clone(), named.clone())
                .await
                .is_err()
            {
                failed.insert(addr.id, std::time::Instant::now());
                continue;
            }
            greeted.insert(addr.id);
            peers += 1;
            askable.push(hello);
            let source = Source {
                id: addr.id,
                conn: blobs,
                seed: false,
            };
            sources.lock().expect("sources lock").push(source.clone());
            new.send(source).ok();
        }
    }
}

/// Connects to a swarm member over `alpn`, giving up after a few seconds; `None` if it
/// cannot be reached (logged at debug: members come and go).
pub(crate) async fn connect(
    endpoint: &Endpoint,
    addr: impl Into<EndpointAddr>,
    alpn: &[u8],
) -> Option<Connection> {
    match tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect(addr, alpn)).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            tracing::debug!("connecting to a swarm member: {e}");
            None
        }
        Err(_) => None,
    }
}
