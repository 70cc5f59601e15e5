//! The node: one iroh endpoint, one blob store and one router per home.
//!
//! Only one process may run the node of a home at a time: the node holds an exclusive lock on
//! `node.lock` for its whole life. Other processes on the same home reach it through the
//! control channel ([`crate::control`]) instead of opening the store a second time.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use iroh::{endpoint::presets, protocol::Router, Endpoint, EndpointAddr, EndpointId, RelayMode};
use iroh_blobs::{
    api::Store,
    store::{
        fs::{options::Options, FsStore},
        GcConfig,
    },
};

use crate::{
    access,
    config::{NodeConfig, RelayChoice},
    error::{Error, Result},
    history::History,
    identity,
    registry::Registry,
};

/// File that marks (and locks) the home of a running node.
pub const LOCK_FILE: &str = "node.lock";
/// Directory of the blob store inside the home.
pub const STORE_DIR: &str = "blobs";

/// The page cache of each database the node opens (the blob store's, the documents', each
/// transfer's store), set through the patched redb (vendor/README.md): redb's default lets each
/// grow to 1 GiB, which in a folder of 100,000 files was 75-105 MiB of each daemon's resident
/// memory and in one of 1,000,000 about half of it. The pages stay in the system's file cache,
/// so a page read again costs a copy, not a disk read.
const DATABASE_CACHE: usize = 16 << 20;

/// A running node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: NodeConfig,
    pub(crate) endpoint: Endpoint,
    pub(crate) store: FsStore,
    pub(crate) router: Router,
    pub(crate) registry: Registry,
    pub(crate) history: History,
    pub(crate) docs: iroh_docs::protocol::Docs,
    /// The documents' replica actor, which folders write their records through (see
    /// [`crate::documents`]).
    pub(crate) doc_sync: iroh_docs::actor::SyncHandle,
    /// The records written lately, kept from garbage collection (see [`crate::documents`]).
    pub(crate) held_records: crate::documents::HeldRecords,
    /// Whether the next garbage collection of the store runs (see [`crate::collect`]).
    pub(crate) collection: crate::collect::Collection,
    pub(crate) book: crate::peers::AddressBook,
    pub(crate) folders: std::sync::Mutex<Vec<crate::folder::manage::Running>>,
    /// Serialises what changes the folder list or which folders run (share, join, pause,
    /// leave, peers recorded): each reads the list, changes it and starts or stops a folder.
    pub(crate) folder_ops: tokio::sync::Mutex<()>,
    /// The paused folders (see [`crate::folder::pause`]).
    pub(crate) paused: crate::folder::pause::Paused,
    /// What this node uploads and downloads: limits and counts.
    pub(crate) upload: Arc<crate::limits::Limiter>,
    pub(crate) download: Arc<crate::limits::Limiter>,
    /// The stores of live receives, served to the other receivers of their shares.
    pub(crate) swarm_stores: crate::swarm::serve::Stores,
    /// The members of the shares sent and received here.
    pub(crate) members: crate::swarm::members::Members,
    /// The received shares served on (see [`crate::kept`]), and whether new ones are.
    pub(crate) kept: crate::kept::Kept,
    pub(crate) keep_serving: std::sync::atomic::AtomicBool,
    /// The devices this one exchanged files with.
    pub(crate) contacts: crate::contacts::Contacts,
    /// Offers of files from other devices.
    pub(crate) offers: crate::offers::Offers,
    /// The devices on the local network.
    pub(crate) nearby: crate::nearby::Nearby,
    _access: tokio::task::JoinHandle<()>,
    _lock: File,
}

/// The outcome of trying to take a home's lock.
pub enum Acquire {
    /// This process now owns the home.
    Owned(HomeLock),
    /// Another process runs the node of this home.
    Busy,
}

/// Exclusive ownership of a home, held for the life of its node.
#[derive(Debug)]
pub struct HomeLock {
    file: File,
    home: PathBuf,
}

impl HomeLock {
    /// Tries to lock `home` (creating it if needed).
    pub fn acquire(home: &Path) -> Result<Acquire> {
        let home_err = |reason: String| Error::Home {
            path: home.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(home).map_err(|e| home_err(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).ok();
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(home.join(LOCK_FILE))
            .map_err(|e| home_err(e.to_string()))?;
        match file.try_lock() {
            Ok(()) => Ok(Acquire::Owned(HomeLock {
                file,
                home: home.to_path_buf(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(Acquire::Busy),
            Err(std::fs::TryLockError::Error(e)) => Err(home_err(format!("cannot lock: {e}"))),
        }
    }
}

impl Node {
    /// Starts the node of `config.home`. Fails if another process runs it.
    pub async fn spawn(config: NodeConfig) -> Result<Node> {
        match HomeLock::acquire(&config.home)? {
            Acquire::Owned(lock) => Node::spawn_locked(config, lock).await,
            Acquire::Busy => Err(Error::Home {
                path: config.home.clone(),
                reason: "another Ferry process is running on this data directory".into(),
            }),
        }
    }

    /// Starts the node on a home this process has locked.
    pub async fn spawn_locked(config: NodeConfig, lock: HomeLock) -> Result<Node> {
        debug_assert_eq!(lock.home, config.home);
        redb::set_default_cache_size(DATABASE_CACHE);
        let secret = identity::load_or_create(&config.home)?;
        // Both sides send a heartbeat every 5 s; a peer silent for 15 s has vanished (crashed,
        // unplugged) and the transfer fails with a resumable error instead of hanging for the
        // QUIC default of 30 s.
        let transport = iroh::endpoint::QuicTransportConfig::builder()
            .max_idle_timeout(Some(
                Duration::from_secs(15)
                    .try_into()
                    .expect("a valid idle timeout"),
            ))
            .build();
        let book = crate::peers::AddressBook::load(&config.home);
        let mut builder = Endpoint::builder(presets::Minimal)
            .address_lookup(book.lookup())
            .secret_key(secret)
            .transport_config(transport)
            .alpns(vec![iroh_blobs::ALPN.to_vec()]);
        builder = match &config.relay {
            RelayChoice::Default => builder.preset(presets::N0),
            RelayChoice::Disabled => builder.relay_mode(RelayMode::Disabled),
            RelayChoice::Custom(url) => builder.relay_mode(RelayMode::custom([url.clone()])),
        };
        if config.relay_insecure_tls {
            #[cfg(feature = "test-utils")]
            {
                builder = builder.ca_tls_config(iroh::tls::CaTlsConfig::insecure_skip_verify());
            }
            #[cfg(not(feature = "test-utils"))]
            return Err(Error::Config(
                "skipping relay TLS verification needs a test build".into(),
            ));
        }
        let loopback = config.bind.is_some_and(|a| a.ip().is_loopback());
        if !config.portmapper || loopback {
            builder = builder.portmapper_config(iroh::endpoint::PortmapperConfig::Disabled);
        }
        if let Some(addr) = config.bind {
            builder = builder
                .clear_ip_transports()
                .bind_addr(addr)
                .map_err(|e| Error::Config(format!("bind address {addr}: {e}")))?;
        }
        let endpoint = builder
            .bind()
            .await
            .map_err(|e| Error::Network(format!("cannot start the network endpoint: {e}")))?;

        let store_dir = config.home.join(STORE_DIR);
        std::fs::create_dir_all(&store_dir).map_err(|e| Error::Home {
            path: config.home.clone(),
            reason: format!("cannot create {}: {e}", store_dir.display()),
        })?;
        let mut options = Options::new(&store_dir);
        // Small files are kept in the database, larger ones referenced where they are (see
        // `folder::content`).
        options.inline.max_data_inlined = crate::folder::content::INLINE_MAX;
        // The records the running folders' documents name are kept through `records_kept`;
        // everything else the store keeps is tagged (folder content, shares, transfers).
        let inner_for_gc: Arc<std::sync::OnceLock<std::sync::Weak<Inner>>> = Default::default();
        options.gc = Some(GcConfig {
            interval: config.gc_interval,
            add_protected: Some(records_kept(inner_for_gc.clone())),
        });
        let store = FsStore::load_with_opts(store_dir.join("blobs.db"), options)
            .await
            .map_err(|e| Error::Store(format!("cannot open the blob store: {e}")))?;

        let config_home = config.home.clone();
        crate::kept::clean(&config_home);
        let registry = Registry::default();
        let upload = Arc::new(crate::limits::Limiter::new(config.upload));
        let download = Arc::new(crate::limits::Limiter::new(config.download));
        let throttle = config.upload.any() || config.adjustable_limits;
        let keep_serving = config.keep_serving;
        let (events, access_task) = access::spawn(registry.clone(), upload.clone(), throttle);
        let swarm_stores = crate::swarm::serve::Stores::default();
        // One provider for every store this node serves (see `swarm::serve`).
        let blobs = crate::swarm::serve::Provider::new(
            (*store).clone(),
            swarm_stores.clone(),
            registry.clone(),
            events,
        );
        let members = crate::swarm::members::Members::new(registry.clone());
        let contacts = crate::contacts::Contacts::load(&config.home);
        let (offers, accepted) = crate::offers::Offers::new(contacts.clone(), config.home.clone());
        let nearby = if config.nearby && !loopback {
            crate::nearby::Nearby::start(&endpoint, config.visible, contacts.clone())
                .unwrap_or_else(|e| {
                    tracing::warn!("{e}");
                    crate::nearby::Nearby::off(config.visible, contacts.clone())
                })
        } else {
            crate::nearby::Nearby::off(config.visible, contacts.clone())
        };
        let hello =
            crate::nearby::hello::Hello::new(nearby.clone(), contacts.clone(), config.home.clone());
        // Gossip's message cache is swept every 10 s instead of every second: per folder, that
        // sweep was an idle daemon's most frequent wakeup. It keeps each message 5 s and its id
        // 20 s (30 and 90 s by default): a peer that missed a message asks for it within a
        // fraction of a second, one that missed more catches up by reconciliation, and a folder
        // publishing a thousand records a second held some 40 MiB of them with the defaults.
        let gossip = iroh_gossip::net::Gossip::builder()
            .broadcast_config(iroh_gossip::proto::PlumtreeConfig {
                cache_evict_interval: Duration::from_secs(10),
                message_cache_retention: Duration::from_secs(5),
                message_id_retention: Duration::from_secs(20),
                ..Default::default()
            })
            .spawn(endpoint.clone());
        let docs_dir = config.home.join("docs");
        std::fs::create_dir_all(&docs_dir).map_err(|e| Error::Home {
            path: config.home.clone(),
            reason: format!("cannot create {}: {e}", docs_dir.display()),
        })?;
        let (docs, doc_sync) = crate::documents::spawn(
            Some(&docs_dir),
            endpoint.clone(),
            (*store).clone(),
            gossip.clone(),
        )
        .await?;
        let router = Router::builder(endpoint.clone())
            .accept(iroh_blobs::ALPN, blobs)
            .accept(iroh_gossip::ALPN, gossip)
            .accept(iroh_docs::ALPN, docs.clone())
            .accept(crate::swarm::members::ALPN, members.clone())
            .accept(crate::offers::ALPN, offers.clone())
            .accept(crate::nearby::hello::ALPN, hello)
            .spawn();
        let node = Node {
            inner: Arc::new(Inner {
                config,
                endpoint,
                store,
                router,
                registry,
                history: History::open(&config_home),
                docs,
                doc_sync,
                held_records: Default::default(),
                collection: crate::collect::Collection::new(std::time::Instant::now()),
                book,
                folders: std::sync::Mutex::new(Vec::new()),
                folder_ops: tokio::sync::Mutex::new(()),
                paused: Default::default(),
                upload,
                download,
                swarm_stores,
                members,
                kept: Default::default(),
                keep_serving: std::sync::atomic::AtomicBool::new(keep_serving),
                contacts,
                offers,
                nearby,
                _access: access_task,
                _lock: lock.file,
            }),
        };
        inner_for_gc.set(Arc::downgrade(&node.inner)).ok();
        crate::offers::receive_accepted(Arc::downgrade(&node.inner), accepted);
        node.start_folders().await;
        Ok(node)
    }

    /// Payload bytes this node has uploaded (counted while uploads are throttled: a limit was
    /// set when it started, or limits are adjustable).
    pub fn uploaded_bytes(&self) -> u64 {
        self.inner.upload.counted()
    }

    /// Payload bytes this node has downloaded for one-shot receives, seeds and synced
    /// folders' content.
    pub fn downloaded_bytes(&self) -> u64 {
        self.inner.download.counted()
    }

    /// The rate limits in force: uploads, downloads.
    pub fn limits(&self) -> (crate::limits::RateLimits, crate::limits::RateLimits) {
        (self.inner.upload.limits(), self.inner.download.limits())
    }

    /// Puts new rate limits in force at once. An upload limit holds only if uploads are
    /// throttled: a limit was set when the node started, or `NodeConfig::adjustable_limits`.
    pub fn set_limits(
        &self,
        upload: crate::limits::RateLimits,
        download: crate::limits::RateLimits,
    ) {
        self.inner.upload.set(upload);
        self.inner.download.set(download);
    }

    /// Puts the settings that apply while the node runs in force: the rate limits, and
    /// whether received shares are served on (turning it off stops serving them now).
    pub fn apply_settings(&self, settings: &crate::settings::Settings) -> Result<()> {
        for (limits, what) in [
            (&settings.upload, "an upload"),
            (&settings.download, "a download"),
        ] {
            limits.check(what).map_err(Error::Config)?;
        }
        self.set_limits(settings.upload, settings.download);
        self.set_keep_serving(settings.keep_serving);
        self.set_visible(settings.visible_nearby)?;
        Ok(())
    }

    /// Whether shares received from now on are served to their other receivers while their
    /// sender shares them; `false` also stops serving those received so far.
    pub fn set_keep_serving(&self, on: bool) {
        self.inner
            .keep_serving
            .store(on, std::sync::atomic::Ordering::Relaxed);
        if !on {
            self.stop_serving_received();
        }
    }

    /// The folder documents.
    pub fn docs(&self) -> &iroh_docs::protocol::Docs {
        &self.inner.docs
    }

    /// This node's id (its public key).
    pub fn id(&self) -> EndpointId {
        self.inner.endpoint.id()
    }

    /// The addresses this node can be reached at right now.
    pub fn addr(&self) -> EndpointAddr {
        self.inner.endpoint.addr()
    }

    /// The address to put in tickets. With a relay, waits briefly until the home relay is known
    /// so the ticket works across networks; without one, the direct addresses are all there is.
    pub async fn ticket_addr(&self) -> EndpointAddr {
        if self.inner.config.relay != RelayChoice::Disabled {
            tokio::time::timeout(Duration::from_secs(5), self.inner.endpoint.online())
                .await
                .ok();
        }
        self.addr()
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.inner.config.home
    }

    /// The iroh endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The blob store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The transfer history of this home.
    pub fn history(&self) -> &History {
        &self.inner.history
    }

    /// Number of live shares.
    pub fn share_count(&self) -> usize {
        self.inner.registry.len()
    }

    /// Stops the node: closes connections and flushes the store.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.kept.clear(true);
        self.inner.nearby.stop();
        // No folder starts or stops meanwhile (a resume from the tray while quitting).
        let _ops = self.inner.folder_ops.lock().await;
        // Folders stop first and save their state.
        let running = std::mem::take(&mut *self.inner.folders.lock().expect("folders lock"));
        for folder in running {
            folder.stop().await;
        }
        // Closing the endpoint sends every connection's close at once, then waits for each to
        // drain (three probe timeouts). A handshake with a peer that never answered (a swarm
        // member that has left) has no round trip measured and holds that wait for three
        // seconds: a receive that had finished lingered that long before exiting. The wait
        // only lets peers acknowledge the close they were sent; it goes on in the background
        // for as long as the process lives. The router's own close then returns at once.
        let endpoint = self.inner.endpoint.clone();
        let closing = tokio::spawn(async move { endpoint.close().await });
        if tokio::time::timeout(CLOSE_WAIT, closing).await.is_err() {
            tracing::debug!("connections still draining after {CLOSE_WAIT:?}; not waited for");
        }
        self.inner
            .router
            .shutdown()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        // The store acknowledges shutdown by closing its channel, which irpc reports as an
        // error; the data is flushed either way.
        if let Err(e) = self.inner.store.shutdown().await {
            tracing::debug!("store shutdown: {e}");
        }
        Ok(())
    }
}

/// How long a node that stops waits for its connections to drain (see [`Node::shutdown`]).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps, at each garbage collection, the records the running and paused folders' documents
/// name: the documents do not tag what they store. (iroh-docs' own protect handler keeps a handle to
/// its sync actor in a task whose drop joins that actor's thread from inside the runtime,
/// which stalled other nodes of the same process on shutdown.) A failure skips the run.
fn records_kept(
    inner: Arc<std::sync::OnceLock<std::sync::Weak<Inner>>>,
) -> iroh_blobs::store::ProtectCb {
    use iroh_blobs::store::ProtectOutcome;
    Arc::new(move |live| {
        let docs: Option<Option<(Vec<iroh_docs::api::Doc>, crate::collect::Collection)>> =
            inner.get().and_then(|w| w.upgrade()).map(|i| {
                // Before the documents are read: what is written from now on is held. Also
                // when the run is skipped: none is under way then, so what was held before
                // the last tick is named by the documents for whichever runs next.
                i.held_records.collection_begins();
                if !i.collection.begins(std::time::Instant::now()) {
                    return None;
                }
                let mut docs: Vec<iroh_docs::api::Doc> = i
                    .folders
                    .lock()
                    .expect("folders lock")
                    .iter()
                    .map(|r| r.folder.doc().clone())
                    .collect();
                docs.extend(i.paused.docs());
                Some((docs, i.collection.clone()))
            });
        // No node (not yet built, or gone): which records its folders name is unknown, so
        // nothing is collected. Nor when nothing may have become garbage since the last run.
        let Some(Some((docs, collection))) = docs else {
            return Box::pin(async { ProtectOutcome::Abort });
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut hashes = Vec::new();
            for doc in docs {
                let Ok(entries) = doc.get_many(iroh_docs::store::Query::all()).await else {
                    // Skipped, so what it was wanted for is still to be collected.
                    collection.wanted();
                    return;
                };
                let mut entries = std::pin::pin!(entries);
                while let Some(entry) = n0_future::StreamExt::next(&mut entries).await {
                    let Ok(entry) = entry else {
                        collection.wanted();
                        return;
                    };
                    hashes.push(entry.content_hash());
                }
            }
            tx.send(hashes).ok();
        });
        Box::pin(async move {
            match rx.await {
                Ok(hashes) => {
                    live.extend(hashes);
                    ProtectOutcome::Continue
                }
                Err(_) => ProtectOutcome::Abort,
            }
        })
    })
}
