//! Swarm downloads: one blob from several peers at once, built from plain iroh-blobs
//! providers (honest, partial, corrupting, leaving) so that each peer's behaviour is the
//! test's to choose.

mod common;

use common::*;
use ferry_core::swarm::{
    self,
    download::{download, Left, Report, Source},
};
use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler, Router},
    EndpointAddr,
};
use iroh_blobs::{
    api::Store,
    protocol::{ChunkRanges, ChunkRangesExt, GetRequest, Request},
    provider::{events::EventSender, handle_observe, StreamPair},
    store::fs::FsStore,
    BlobsProtocol, Hash,
};
use tokio::sync::mpsc;

/// A peer serving blobs from a store on disk.
struct Peer {
    router: Router,
    store: FsStore,
    _dir: tempfile::TempDir,
}

impl Peer {
    async fn empty() -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::load(dir.path().join("store")).await.unwrap();
        let router = Router::builder(loopback_endpoint().await)
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(&store, None))
            .spawn();
        Peer {
            router,
            store,
            _dir: dir,
        }
    }

    /// A peer with the whole of `data`.
    async fn with(data: &[u8]) -> Peer {
        let peer = Peer::empty().await;
        let tag = peer.store.add_slice(data).await.unwrap();
        // Kept for the test's lifetime.
        peer.store
            .tags()
            .set("kept", tag.hash_and_format())
            .await
            .unwrap();
        peer
    }

    /// A peer that claims the whole of `data` and serves every piece with a byte flipped.
    async fn corrupt(data: &[u8]) -> Peer {
        Peer::hostile(data, false).await
    }

    /// A peer that claims the whole of `data` and serves none of it.
    async fn withholding(data: &[u8]) -> Peer {
        Peer::hostile(data, true).await
    }

    async fn hostile(data: &[u8], withhold: bool) -> Peer {
        let peer = Peer::empty().await;
        let tag = peer.store.add_slice(data).await.unwrap();
        peer.store
            .tags()
            .set("kept", tag.hash_and_format())
            .await
            .unwrap();
        let store: Store = (*peer.store).clone();
        let router = Router::builder(loopback_endpoint().await)
            .accept(iroh_blobs::ALPN, Corrupting { store, withhold })
            .spawn();
        Peer { router, ..peer }
    }

    fn addr(&self) -> EndpointAddr {
        self.router.endpoint().addr()
    }
}

/// A hostile provider: answers observe requests honestly (it claims what its store has) and
/// get requests with the right encoding of the asked ranges, one byte in each 16 KiB flipped.
#[derive(Debug, Clone)]
struct Corrupting {
    store: Store,
    /// Sends nothing at all instead (claims what it never serves).
    withhold: bool,
}

impl ProtocolHandler for Corrupting {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let store = self.store.clone();
            let withhold = self.withhold;
            tokio::spawn(async move {
                let Ok((request, _)) = Request::read_async(&mut recv).await else {
                    return;
                };
                match request {
                    Request::Observe(r) => {
                        let pair = StreamPair::new(0, recv, send, EventSender::DEFAULT);
                        handle_observe(pair, store, r).await.ok();
                    }
                    Request::Get(_) if withhold => {
                        send.finish().ok();
                    }
                    Request::Get(r) => {
                        let ranges = r.ranges.iter_infinite().next().unwrap().clone();
                        let mut bytes =
                            store.export_bao(r.hash, ranges).bao_to_vec().await.unwrap();
                        let mut at = 8 + 500;
                        while at < bytes.len() {
                            bytes[at] ^= 0xff;
                            at += 16 * 1024;
                        }
                        send.write_all(&bytes).await.ok();
                        send.finish().ok();
                        send.stopped().await.ok();
                    }
                    _ => {}
                }
            });
        }
        Ok(())
    }
}

/// The receiving side: an endpoint and a store on disk.
struct Receiver {
    endpoint: iroh::Endpoint,
    store: FsStore,
    dir: tempfile::TempDir,
}

impl Receiver {
    async fn new() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::load(dir.path().join("store")).await.unwrap();
        Receiver {
            endpoint: loopback_endpoint().await,
            store,
            dir,
        }
    }

    async fn source(&self, peer: &Peer) -> Source {
        let addr = peer.addr();
        let conn = self
            .endpoint
            .connect(addr.clone(), iroh_blobs::ALPN)
            .await
            .unwrap();
        Source {
            id: addr.id,
            conn,
            seed: false,
        }
    }

    async fn fetch(&self, hash: Hash, size: u64, peers: &[&Peer]) -> ferry_core::Result<Report> {
        let mut sources = Vec::new();
        for p in peers {
            sources.push(self.source(p).await);
        }
        // No peer joins later: the download ends when these cannot finish it.
        let (joins_tx, joins) = mpsc::unbounded_channel();
        drop(joins_tx);
        let store: &Store = &self.store;
        download(
            store.clone(),
            hash,
            size,
            sources,
            joins,
            None,
            Default::default(),
        )
        .await
    }

    async fn bytes(&self, hash: Hash) -> Vec<u8> {
        self.store.get_bytes(hash).await.unwrap().to_vec()
    }
}

fn blob(size: usize, seed: u64) -> (Vec<u8>, Hash) {
    let data = pseudo_random(size, seed);
    let hash = Hash::new(&data);
    (data, hash)
}

#[tokio::test]
async fn one_blob_comes_from_several_peers_at_once() {
    let (data, hash) = blob(24 << 20, 1);
    let peers = [
        Peer::with(&data).await,
        Peer::with(&data).await,
        Peer::with(&data).await,
    ];
    let rx = Receiver::new().await;
    let report = rx
        .fetch(hash, data.len() as u64, &[&peers[0], &peers[1], &peers[2]])
        .await
        .unwrap();
    assert_eq!(rx.bytes(hash).await, data);
    let contributed: Vec<u64> = report.peers.values().map(|p| p.bytes).collect();
    assert_eq!(
        contributed.iter().sum::<u64>(),
        data.len() as u64,
        "{report:?}"
    );
    assert!(
        contributed.iter().filter(|b| **b > 0).count() >= 2,
        "pieces came from more than one peer: {report:?}"
    );
    assert!(report.peers.values().all(|p| p.left.is_none()));
}

#[tokio::test]
async fn a_peer_serving_corrupt_pieces_leaves_and_the_others_finish() {
    let (data, hash) = blob(8 << 20, 2);
    let bad = Peer::corrupt(&data).await;
    let good = Peer::with(&data).await;
    let rx = Receiver::new().await;
    let report = rx
        .fetch(hash, data.len() as u64, &[&bad, &good])
        .await
        .unwrap();
    assert_eq!(rx.bytes(hash).await, data, "no corrupt byte made it in");
    let bad_report = &report.peers[&bad.addr().id];
    assert_eq!(bad_report.left, Some(Left::Corrupt), "{report:?}");
    assert_eq!(bad_report.bytes, 0);
    assert_eq!(report.peers[&good.addr().id].bytes, data.len() as u64);
}

#[tokio::test]
async fn a_corrupt_peer_alone_never_gets_a_byte_in() {
    let (data, hash) = blob(2 << 20, 3);
    let bad = Peer::corrupt(&data).await;
    let rx = Receiver::new().await;
    let err = rx
        .fetch(hash, data.len() as u64, &[&bad])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no peer has the rest"), "{err}");
    let bitfield = rx.store.observe(hash).await.unwrap();
    assert!(
        bitfield.ranges.is_empty(),
        "nothing stored from a corrupt peer"
    );
}

#[tokio::test]
async fn a_peer_that_claims_pieces_it_never_serves_loses_its_place() {
    let (data, hash) = blob(4 << 20, 6);
    let liar = Peer::withholding(&data).await;
    let good = Peer::with(&data).await;
    let rx = Receiver::new().await;
    let report = rx
        .fetch(hash, data.len() as u64, &[&liar, &good])
        .await
        .unwrap();
    assert_eq!(rx.bytes(hash).await, data);
    let liar_report = &report.peers[&liar.addr().id];
    assert_eq!(liar_report.bytes, 0);
    // It either lost its place or never got a turn before the others finished.
    assert!(
        matches!(liar_report.left, Some(Left::Unreliable) | None),
        "{report:?}"
    );
    // Alone, it cannot stall a download forever.
    let rx = Receiver::new().await;
    let err = rx
        .fetch(hash, data.len() as u64, &[&liar])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no peer has the rest"), "{err}");
}

#[tokio::test]
async fn a_peer_with_half_the_blob_serves_its_half_and_a_late_peer_the_rest() {
    let (data, hash) = blob(8 << 20, 4);
    let size = data.len() as u64;
    let full = Peer::with(&data).await;
    // A peer that fetched only the first half from the full one.
    let half = Peer::empty().await;
    let conn = half
        .router
        .endpoint()
        .connect(full.addr(), iroh_blobs::ALPN)
        .await
        .unwrap();
    half.store
        .remote()
        .execute_get(
            conn,
            GetRequest::blob_ranges(hash, ChunkRanges::bytes(0..size / 2)),
        )
        .await
        .unwrap();
    let rx = Receiver::new().await;
    let (joins_tx, joins) = mpsc::unbounded_channel();
    let sources = vec![rx.source(&half).await];
    let store: Store = (*rx.store).clone();
    let task = tokio::spawn(download(
        store,
        hash,
        size,
        sources,
        joins,
        None,
        Default::default(),
    ));
    // The half arrives; the download waits for someone with the rest.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let b = rx.store.observe(hash).await.unwrap();
        if b.ranges.is_superset(&ChunkRanges::bytes(0..size / 2)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first half never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!task.is_finished());
    joins_tx.send(rx.source(&full).await).unwrap();
    let report = task.await.unwrap().unwrap();
    assert_eq!(rx.bytes(hash).await, data);
    assert_eq!(report.peers[&half.addr().id].bytes, size / 2, "{report:?}");
    assert_eq!(report.peers[&full.addr().id].bytes, size / 2, "{report:?}");
}

#[tokio::test]
async fn a_peer_that_leaves_midway_is_replaced_and_a_resume_fetches_only_the_rest() {
    let (data, hash) = blob(8 << 20, 5);
    let size = data.len() as u64;
    let leaving = Peer::with(&data).await;
    let rx = Receiver::new().await;
    // A first attempt got a quarter of the blob from one peer, then that peer left.
    let conn = rx
        .endpoint
        .connect(leaving.addr(), iroh_blobs::ALPN)
        .await
        .unwrap();
    rx.store
        .remote()
        .execute_get(
            conn,
            GetRequest::blob_ranges(hash, ChunkRanges::bytes(0..size / 4)),
        )
        .await
        .unwrap();
    leaving.router.shutdown().await.unwrap();
    // Reopened after a crash: the pieces on disk count, whoever sent them.
    let dir = rx.dir.path().join("store");
    rx.store.shutdown().await.unwrap();
    let reopened = Receiver {
        endpoint: rx.endpoint.clone(),
        store: FsStore::load(&dir).await.unwrap(),
        dir: rx.dir,
    };
    let other = Peer::with(&data).await;
    let report = reopened.fetch(hash, size, &[&other]).await.unwrap();
    assert_eq!(reopened.bytes(hash).await, data);
    assert_eq!(report.peers[&other.addr().id].bytes, size - size / 4);
}

#[tokio::test]
async fn receivers_of_one_ticket_fetch_from_each_other_and_spare_the_sender() {
    let env = Env::new();
    // The sender's upload is the scarce resource, as on a home connection.
    let size = 16usize << 20;
    let sender = limited_node(&env, "sender", 8 << 20).await;
    let file = env.dir("out").join("video.bin");
    let data = pseudo_random(size, 11);
    write(&file, &data);
    let (shared, _events) = share(&sender, &[file]).await;
    let ticket = shared.info().ticket.clone();
    // The receivers upload as fast as they can; their uploads are counted all the same.
    let mut receivers = Vec::new();
    for i in 0..3 {
        receivers.push(limited_node(&env, &format!("r{i}"), 1 << 40).await);
    }
    let dests: Vec<_> = (0..3).map(|i| env.dir(&format!("dest{i}"))).collect();
    let runs = receivers.iter().zip(&dests).enumerate().map(|(i, (r, d))| {
        let ticket = ticket.clone();
        async move {
            let res = receive(r, &ticket, d).await;
            println!("receiver {i} done: {:?}", res.as_ref().map(|_| ()));
            res
        }
    });
    for res in n0_future::join_all(runs).await {
        res.unwrap();
    }
    for d in &dests {
        assert_eq!(std::fs::read(d.join("video.bin")).unwrap(), data);
    }
    let sent = sender.uploaded_bytes();
    let by_receivers: u64 = receivers.iter().map(|r| r.uploaded_bytes()).sum();
    println!("sender uploaded {sent} bytes, receivers {by_receivers}, file {size}");
    assert!(
        sent < 2 * size as u64,
        "the sender uploaded {:.2} copies of the file",
        sent as f64 / size as f64
    );
    assert!(by_receivers > 0, "the receivers served each other");
}

#[tokio::test]
async fn a_stranger_without_the_ticket_gets_nothing_from_a_receiver() {
    let env = Env::new();
    let size = 8usize << 20;
    // A slow sender keeps the receive going while the stranger tries.
    let sender = limited_node(&env, "sender", 2 << 20).await;
    let file = env.dir("out").join("big.bin");
    let data = pseudo_random(size, 12);
    write(&file, &data);
    let (shared, _events) = share(&sender, &[file]).await;
    let ticket = shared.info().ticket.clone();
    let root: Hash = shared.info().offer.hash.parse().unwrap();
    let receiver = env.node("receiver").await;
    let dest = env.dir("dest");
    let receiving = {
        let (receiver, ticket, dest) = (receiver.clone(), ticket.clone(), dest.clone());
        tokio::spawn(async move { receive(&receiver, &ticket, &dest).await })
    };
    let hash = Hash::new(&data);
    let target = receiver.endpoint().addr();
    let first_chunks = || GetRequest::blob_ranges(hash, ChunkRanges::bytes(0..16384));
    // A peer with the ticket: it says hello with the root, then asks for the file's start.
    let member = loopback_endpoint().await;
    let member_blobs = member
        .connect(target.clone(), iroh_blobs::ALPN)
        .await
        .unwrap();
    let member_hello = member
        .connect(target.clone(), swarm::members::ALPN)
        .await
        .unwrap();
    let member_store = iroh_blobs::store::mem::MemStore::new();
    // A stranger: it knows the file's hash but not the share's root.
    let stranger = loopback_endpoint().await;
    let stranger_blobs = stranger
        .connect(target.clone(), iroh_blobs::ALPN)
        .await
        .unwrap();
    let stranger_hello = stranger
        .connect(target.clone(), swarm::members::ALPN)
        .await
        .unwrap();
    let stranger_store = iroh_blobs::store::mem::MemStore::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let me = swarm::members::Contact::of(&member.addr());
        swarm::members::exchange(&member_hello, root, me, Default::default())
            .await
            .unwrap();
        let got = member_store
            .remote()
            .execute_get(member_blobs.clone(), first_chunks())
            .await;
        if got.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a member was never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The receiver serves the file now, to its members only.
    let me = swarm::members::Contact::of(&stranger.addr());
    let others = swarm::members::exchange(
        &stranger_hello,
        Hash::new(b"a guess"),
        me,
        Default::default(),
    )
    .await
    .unwrap();
    assert!(others.is_none(), "a wrong root learns no members");
    let refused = stranger_store
        .remote()
        .execute_get(stranger_blobs.clone(), first_chunks())
        .await;
    assert!(refused.is_err(), "a stranger is not served the file");
    let first = first_observed(&stranger_store, &stranger_blobs, hash, 10)
        .await
        .expect("an answer, not silence");
    assert!(
        !matches!(first, Some(Ok(_))),
        "nor told what the receiver has: {first:?}"
    );
    assert!(
        !receiving.is_finished(),
        "the refusals came while the receiver was serving"
    );
    // The member is still served at this point: the refusal was the stranger's alone.
    member_store
        .remote()
        .execute_get(member_blobs.clone(), first_chunks())
        .await
        .expect("a member is served");
    receiving.await.unwrap().unwrap();
    assert_eq!(std::fs::read(dest.join("big.bin")).unwrap(), data);
}

#[tokio::test]
async fn an_upload_limit_holds() {
    let env = Env::new();
    let (size, rate) = (6usize << 20, 3u64 << 20);
    let sender = limited_node(&env, "sender", rate).await;
    let file = env.dir("out").join("f.bin");
    let data = pseudo_random(size, 13);
    write(&file, &data);
    let (shared, _events) = share(&sender, &[file]).await;
    let receiver = env.node("receiver").await;
    let dest = env.dir("dest");
    let started = std::time::Instant::now();
    receive(&receiver, shared.ticket(), &dest).await.unwrap();
    let took = started.elapsed().as_secs_f64();
    let sent = sender.uploaded_bytes();
    assert!(sent >= size as u64, "every byte was counted: {sent}");
    // Never faster than the limit allows (less the bucket's quarter-second burst), whatever
    // the machine's speed.
    let achieved = sent as f64 / took;
    assert!(
        achieved <= rate as f64 * 1.10 + (rate as f64 / 4.0) / took,
        "{achieved:.0} B/s for a limit of {rate} B/s"
    );
}

#[tokio::test]
async fn a_download_limit_holds_from_the_moment_it_is_set() {
    let env = Env::new();
    let (size, rate) = (6usize << 20, 3u64 << 20);
    let sender = env.node("sender").await;
    let out = env.dir("out");
    // A large file (fetched piece by piece) and a small one (fetched whole from the sender).
    write(&out.join("big.bin"), &pseudo_random(size, 15));
    write(&out.join("small.bin"), &pseudo_random(1 << 20, 16));
    let (shared, _events) = share(&sender, std::slice::from_ref(&out)).await;
    let receiver = env.node("receiver").await;
    // Set while the node runs: per peer (the only peer here is the sender).
    let limit = ferry_core::limits::RateLimits {
        total: None,
        per_peer: Some(rate),
    };
    receiver.set_limits(Default::default(), limit);
    assert_eq!(receiver.limits().1, limit);
    let dest = env.dir("dest");
    let started = std::time::Instant::now();
    receive(&receiver, shared.ticket(), &dest).await.unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_trees_equal(&out, &dest.join("out"));
    let got = receiver.downloaded_bytes();
    let payload = (size + (1 << 20)) as u64;
    assert!(got >= payload, "every byte was counted: {got}");
    let achieved = got as f64 / took;
    assert!(
        achieved <= rate as f64 * 1.10 + (rate as f64 / 4.0) / took,
        "{achieved:.0} B/s for a limit of {rate} B/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_serves_what_it_received_to_later_receivers() {
    let env = Env::new();
    let size = 6usize << 20;
    // A slow sender: a later receiver that finds an earlier one fetches from it too.
    let sender = limited_node(&env, "sender", 2 << 20).await;
    let out = env.dir("out");
    let data = pseudo_random(size, 17);
    write(&out.join("big.bin"), &data);
    let (shared, _events) = share(&sender, &[out.join("big.bin")]).await;
    let ticket: ferry_core::Ticket = shared.ticket().parse().unwrap();
    let root = ticket.blob_ticket().hash();

    let early = env.node("early").await;
    early.set_keep_serving(true);
    let early_dest = env.dir("early");
    receive(&early, shared.ticket(), &early_dest).await.unwrap();
    eventually("the early receiver serves the share", || {
        early.serves_received(&root)
    })
    .await;
    // Served from the saved file: the seed's store holds no second copy.
    let seed_dir = env.home("early").join("kept").join(root.to_hex());
    let kept: u64 = walk_files(&seed_dir)
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    assert!(
        kept < size as u64 / 10,
        "{kept} bytes kept besides the file"
    );

    let late = env.node("late").await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let late_dest = env.dir("late");
    late.receive(
        &ticket,
        &late_dest,
        tx,
        ferry_core::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(late_dest.join("big.bin")).unwrap(), data);
    let mut from_early = 0;
    while let Ok(e) = rx.try_recv() {
        if let ferry_core::ReceiveEvent::Progress(p) = e {
            for peer in p.peers.iter().filter(|p| p.peer == early.id().to_string()) {
                assert!(!peer.sender);
                from_early = from_early.max(peer.bytes);
            }
        }
    }
    assert!(
        from_early > 0,
        "the late receiver fetched from the early one"
    );
    assert_eq!(
        std::fs::read(early_dest.join("big.bin")).unwrap(),
        data,
        "serving left the received file as it was"
    );

    // The user edits the received file: its new bytes are never served, and the share is
    // no longer served at all.
    let hash = Hash::new(&data);
    let fetch_from_early = || async {
        let conn = late
            .endpoint()
            .connect(early.endpoint().addr(), iroh_blobs::ALPN)
            .await
            .unwrap();
        let store = iroh_blobs::store::mem::MemStore::new();
        // Asking for the root opens the share, as a receive does.
        store
            .remote()
            .execute_get(conn.clone(), GetRequest::blob(root))
            .await?;
        store
            .remote()
            .execute_get(
                conn,
                GetRequest::blob_ranges(hash, ChunkRanges::chunks(0..16)),
            )
            .await
    };
    assert!(fetch_from_early().await.is_ok(), "served while unchanged");
    let mut edited = data.clone();
    edited[..11].copy_from_slice(b"my own note");
    std::fs::write(early_dest.join("big.bin"), &edited).unwrap();
    assert!(
        fetch_from_early().await.is_err(),
        "an edited file is not served"
    );
    assert!(!early.serves_received(&root));
    eventually("the seed's store is removed", || !seed_dir.exists()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_received_shares_stops_when_the_setting_is_turned_off() {
    let env = Env::new();
    let sender = env.node("sender").await;
    let out = env.dir("out");
    write(&out.join("big.bin"), &pseudo_random(5 << 20, 18));
    let (shared, _events) = share(&sender, &[out.join("big.bin")]).await;
    let root = shared
        .ticket()
        .parse::<ferry_core::Ticket>()
        .unwrap()
        .blob_ticket()
        .hash();
    let receiver = env.node("receiver").await;
    receiver.set_keep_serving(true);
    receive(&receiver, shared.ticket(), &env.dir("dest"))
        .await
        .unwrap();
    eventually("served on", || receiver.serves_received(&root)).await;
    receiver.set_keep_serving(false);
    assert!(!receiver.serves_received(&root));
    // Waiting for it ends at once.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        receiver.received_served(&root),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_helper_keeps_a_share_available_after_the_sender_leaves() {
    let env = Env::new();
    let sender = env.node("sender").await;
    let out = env.dir("out");
    let big = pseudo_random(6 << 20, 14);
    write(&out.join("big.bin"), &big);
    write(&out.join("note.txt"), b"small, whole from the sender");
    let (shared, _events) = share(&sender, &[out.join("big.bin"), out.join("note.txt")]).await;
    let ticket: ferry_core::Ticket = shared.ticket().parse().unwrap();
    let helper = env.node("helper").await;
    let (events, _rx) = mpsc::unbounded_channel();
    let (share_events, _share_rx) = mpsc::unbounded_channel();
    let seed = helper.seed(&ticket, &events, share_events).await.unwrap();
    let helper_ticket = seed.ticket().to_string();
    assert_ne!(
        helper_ticket,
        shared.ticket(),
        "a ticket of the helper's own"
    );
    // The sender closes its laptop.
    drop(shared);
    sender.shutdown().await.unwrap();
    let receiver = env.node("receiver").await;
    let dest = env.dir("dest");
    receive(&receiver, &helper_ticket, &dest).await.unwrap();
    assert_eq!(std::fs::read(dest.join("big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read(dest.join("note.txt")).unwrap(),
        b"small, whole from the sender"
    );
    // Seeding wrote no file anywhere: everything it holds is in its store.
    let helper_files: Vec<_> = walk_files(&env.home("helper"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == "big.bin" || n == "note.txt")
        })
        .collect();
    assert!(helper_files.is_empty(), "{helper_files:?}");
    // Stopped and dropped: the helper no longer serves it.
    drop(seed);
    let again = env.node("late").await;
    let err = receive(&again, &helper_ticket, &env.dir("late"))
        .await
        .unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[tokio::test]
async fn a_received_share_cannot_make_a_receiver_serve_what_it_holds_for_something_else() {
    let env = Env::new();
    // The receiver shares a private file with someone else.
    let receiver = env.node("receiver").await;
    let private = pseudo_random(40_000, 15);
    let mine = env.dir("mine").join("private.bin");
    write(&mine, &private);
    let (_own_share, _own_events) = share(&receiver, &[mine]).await;
    let private_hash = Hash::new(&private);
    // A sender who knows that file lists it in a share of its own, next to a large file it
    // sends slowly, and gives the ticket to an accomplice.
    let sender = limited_node(&env, "sender", 1 << 20).await;
    let out = env.dir("out");
    write(&out.join("big.bin"), &pseudo_random(5 << 20, 16));
    write(&out.join("same.bin"), &private);
    let (shared, _events) = share(&sender, &[out.join("big.bin"), out.join("same.bin")]).await;
    let root: Hash = shared.info().offer.hash.parse().unwrap();
    let receiving = {
        let (receiver, ticket, dest) = (
            receiver.clone(),
            shared.ticket().to_string(),
            env.dir("dest"),
        );
        tokio::spawn(async move { receive(&receiver, &ticket, &dest).await })
    };
    // The accomplice holds the ticket: it is a member of the share at the receiver.
    let accomplice = loopback_endpoint().await;
    let target = receiver.endpoint().addr();
    let hello = accomplice
        .connect(target.clone(), swarm::members::ALPN)
        .await
        .unwrap();
    let blobs = accomplice
        .connect(target.clone(), iroh_blobs::ALPN)
        .await
        .unwrap();
    let store = iroh_blobs::store::mem::MemStore::new();
    let big_hash = Hash::new(pseudo_random(5 << 20, 16));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // A member once the receiver knows it, and has some of the large file: the small
        // file (the listed hash) comes only after the large one is whole.
        let me = swarm::members::Contact::of(&accomplice.addr());
        swarm::members::exchange(&hello, root, me, Default::default())
            .await
            .unwrap();
        let first = first_observed(&store, &blobs, big_hash, 5).await;
        if let Ok(Some(Ok(bitfield))) = first {
            if !bitfield.ranges.is_empty() {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the member was never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The listed hash is the receiver's private file: not served from what it holds for its
    // own share, only (later) from what it fetched for this one.
    let leak = store
        .remote()
        .execute_get(blobs.clone(), GetRequest::blob(private_hash))
        .await;
    assert!(!receiving.is_finished(), "asked while the receive runs");
    assert!(
        leak.is_err(),
        "the receiver's private file was served to a member of another share"
    );
    receiving.await.unwrap().unwrap();
}

/// The first answer to an observe request for `hash` over `conn` (what the peer says it has),
/// or `Err` if none comes within `secs` seconds.
async fn first_observed(
    store: &Store,
    conn: &Connection,
    hash: Hash,
    secs: u64,
) -> Result<Option<std::io::Result<iroh_blobs::api::proto::Bitfield>>, tokio::time::error::Elapsed>
{
    let observed = store.remote().observe(
        conn.clone(),
        iroh_blobs::protocol::ObserveRequest::new(hash),
    );
    tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        n0_future::StreamExt::next(&mut std::pin::pin!(observed)),
    )
    .await
}

/// A receiver that had finished and gone was still passed on to the next receivers for ten
/// minutes: each dialled it, and waited for a handshake nobody answered.
#[tokio::test]
async fn a_member_that_left_is_not_passed_on() {
    let env = Env::new();
    let sender = env.node("sender").await;
    let file = env.dir("out").join("big.bin");
    write(&file, &pseudo_random(1 << 20, 21));
    let (shared, _events) = share(&sender, &[file]).await;
    let root: Hash = shared.info().offer.hash.parse().unwrap();
    let target = sender.endpoint().addr();
    let hello = |ep: iroh::Endpoint| {
        let target = target.clone();
        async move {
            let conn = ep.connect(target, swarm::members::ALPN).await.unwrap();
            (ep, conn)
        }
    };
    let (staying, stays) = hello(loopback_endpoint().await).await;
    let (leaving, leaves) = hello(loopback_endpoint().await).await;
    let ask = |ep: &iroh::Endpoint, conn: &iroh::endpoint::Connection| {
        let me = swarm::members::Contact::of(&ep.addr());
        let conn = conn.clone();
        async move {
            swarm::members::exchange(&conn, root, me, Default::default())
                .await
                .unwrap()
                .expect("the sender answers for its share")
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    let gone = *leaving.id().as_bytes();
    ask(&leaving, &leaves).await;
    assert_eq!(
        ask(&staying, &stays).await,
        vec![gone],
        "a member is listed"
    );
    leaves.close(0u32.into(), b"done");
    leaving.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ask(&staying, &stays).await.contains(&gone) {
        assert!(
            std::time::Instant::now() < deadline,
            "a member that left is still passed on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The one that stays is still known to the sender.
    let (other, to_other) = hello(loopback_endpoint().await).await;
    assert_eq!(ask(&other, &to_other).await, vec![*staying.id().as_bytes()]);
}
