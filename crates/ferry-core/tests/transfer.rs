//! In-process transfers between nodes on loopback, relays disabled unless a test starts one.

mod common;

use std::path::Path;

use common::*;
use ferry_core::{progress::ReceiveEvent, CancellationToken, Error};

#[tokio::test]
async fn single_file() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("hello.txt"), b"hello ferry");
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[src.join("hello.txt")]).await;
    assert_eq!(share.info().offer.file_count(), 1);
    let dest = env.dir("dest");
    let summary = receive(&receiver, share.ticket(), &dest).await.unwrap();
    assert_eq!(
        std::fs::read(dest.join("hello.txt")).unwrap(),
        b"hello ferry"
    );
    assert_eq!(summary.files, 1);
    assert_eq!(summary.saved, vec![dest.join("hello.txt")]);
    assert_no_leftovers(&dest);
}

#[tokio::test]
async fn nested_tree_with_unicode_spaces_and_empty_files() {
    let env = Env::new();
    let root = env.dir("src").join("Ünïcødé folder");
    write(&root.join("a b c.txt"), b"spaces");
    write(&root.join("日本語/ファイル.md"), "本文".as_bytes());
    write(&root.join("deep/er/still/empty.bin"), b"");
    write(&root.join("deep/er/random.bin"), &pseudo_random(300_000, 1));
    write(&root.join(".hidden"), b"dot");
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, std::slice::from_ref(&root)).await;
    assert_eq!(share.info().offer.file_count(), 5);
    let dest = env.dir("dest");
    receive(&receiver, share.ticket(), &dest).await.unwrap();
    assert_trees_equal(&root, &dest.join("Ünïcødé folder"));
    assert_no_leftovers(&dest);
}

#[tokio::test]
async fn zero_byte_file() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("empty"), b"");
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[src.join("empty")]).await;
    let dest = env.dir("dest");
    let summary = receive(&receiver, share.ticket(), &dest).await.unwrap();
    let meta = std::fs::metadata(dest.join("empty")).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.len(), 0);
    assert_eq!(summary.total_size, 0);
}

#[tokio::test]
async fn existing_files_are_never_overwritten() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("report.pdf"), b"new version");
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[src.join("report.pdf")]).await;
    let dest = env.dir("dest");
    write(&dest.join("report.pdf"), b"precious");
    let summary = receive(&receiver, share.ticket(), &dest).await.unwrap();
    assert_eq!(std::fs::read(dest.join("report.pdf")).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(dest.join("report (1).pdf")).unwrap(),
        b"new version"
    );
    assert_eq!(summary.saved, vec![dest.join("report (1).pdf")]);
    // Receiving again lands beside both.
    receive(&receiver, share.ticket(), &dest).await.unwrap();
    assert_eq!(
        std::fs::read(dest.join("report (2).pdf")).unwrap(),
        b"new version"
    );
}

#[tokio::test]
async fn preview_lists_names_and_sizes_without_downloading() {
    let env = Env::new();
    let root = env.dir("src").join("album");
    write(&root.join("one.jpg"), &pseudo_random(50_000, 2));
    write(&root.join("two.jpg"), &pseudo_random(70_000, 3));
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[root]).await;
    let ticket = share.ticket().parse().unwrap();
    let offer = receiver.preview(&ticket).await.unwrap();
    let listed: Vec<(&str, u64)> = offer
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.size))
        .collect();
    assert_eq!(
        listed,
        [("album/one.jpg", 50_000), ("album/two.jpg", 70_000)]
    );
    assert_eq!(offer.total_size, 120_000);
    // Only the size proofs (a chunk per file) were fetched, not the files.
    let local = receiver
        .store()
        .remote()
        .local(iroh_blobs::HashAndFormat::hash_seq(
            ticket.blob_ticket().hash(),
        ))
        .await
        .unwrap();
    assert!(!local.is_complete());
    assert!(
        local.local_bytes() < 10_000,
        "fetched {}",
        local.local_bytes()
    );
}

#[tokio::test]
async fn resume_fetches_only_what_was_missing() {
    let env = Env::new();
    let src = env.dir("src");
    let size = 64 * 1024 * 1024;
    write(&src.join("big.bin"), &pseudo_random(size, 4));
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[src.join("big.bin")]).await;
    let ticket: ferry_core::Ticket = share.ticket().parse().unwrap();
    let dest = env.dir("dest");

    // First attempt: cancel once some data has arrived.
    let first = receive_cancelled_at(
        &receiver,
        &ticket,
        &dest,
        |event| matches!(event, ReceiveEvent::Progress(p) if p.done > 0 && p.done < p.total),
    )
    .await;
    assert!(matches!(first, Err(Error::Cancelled)), "{first:?}");
    assert_no_leftovers(&dest);
    assert!(
        !dest.join("big.bin").exists(),
        "nothing appears before it is complete"
    );
    let store_dir =
        ferry_core::transfer_store::transfer_dir(receiver.home(), &ticket.blob_ticket().hash());
    assert!(
        store_dir.exists(),
        "the transfer's store is kept to resume from"
    );

    // Second attempt: only the rest crosses the network.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let summary = receiver
        .receive(&ticket, &dest, tx, CancellationToken::new())
        .await
        .unwrap();
    let mut local_before = None;
    while let Ok(e) = rx.try_recv() {
        if let ReceiveEvent::Offer { local_bytes, .. } = e {
            local_before = Some(local_bytes);
        }
    }
    let local_before = local_before.expect("offer event");
    assert!(local_before > 0, "the first attempt's data was kept");
    assert!(
        summary.bytes_fetched < size as u64,
        "fetched {}",
        summary.bytes_fetched
    );
    assert_eq!(summary.bytes_fetched + local_before, size as u64);
    assert_eq!(
        std::fs::read(dest.join("big.bin")).unwrap(),
        pseudo_random(size, 4)
    );
    assert!(
        !store_dir.exists(),
        "the transfer's store is gone once the files are in place"
    );
    // The sender's file is untouched by the receiver moving its copy into place.
    assert_eq!(
        std::fs::read(src.join("big.bin")).unwrap(),
        pseudo_random(size, 4)
    );
}

/// A receive cancelled while it moves verified files out of its store into place resumes:
/// the next attempt finishes the files already moved or staged instead of failing on them, and
/// nothing is saved twice (`photos (1)`). Regression: the next attempt removed the staging
/// directory, which held the only copy of what had been moved out of the store.
#[tokio::test]
async fn a_receive_cancelled_while_moving_files_into_place_resumes() {
    let env = Env::new();
    let src = env.dir("src");
    for i in 0..24 {
        write(
            &src.join(format!("photos/p{i}.jpg")),
            &pseudo_random(40_000, i),
        );
    }
    write(&src.join("notes.txt"), &pseudo_random(50_000, 99));
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[src.join("photos"), src.join("notes.txt")]).await;
    let ticket: ferry_core::Ticket = share.ticket().parse().unwrap();
    let dest = env.dir("dest");

    let first = receive_cancelled_at(&receiver, &ticket, &dest, |event| {
        matches!(event, ReceiveEvent::Exporting { .. })
    })
    .await;
    assert!(matches!(first, Err(Error::Cancelled)), "{first:?}");

    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let summary = receiver
        .receive(&ticket, &dest, tx, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.files, 25);
    for i in 0..24 {
        assert_eq!(
            std::fs::read(dest.join(format!("photos/p{i}.jpg"))).unwrap(),
            pseudo_random(40_000, i),
            "p{i}"
        );
    }
    assert_eq!(
        std::fs::read(dest.join("notes.txt")).unwrap(),
        pseudo_random(50_000, 99)
    );
    let mut names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["notes.txt", "photos"],
        "saved once, nothing left over"
    );
}

#[tokio::test]
async fn cancel_stops_and_writes_nothing() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("big.bin"), &pseudo_random(16 * 1024 * 1024, 5));
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[src.join("big.bin")]).await;
    let ticket: ferry_core::Ticket = share.ticket().parse().unwrap();
    let dest = env.dir("dest");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let res = receiver.receive(&ticket, &dest, tx, cancel).await;
    let err = res.unwrap_err();
    assert_eq!(err.code(), "cancelled");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
}

#[tokio::test]
async fn malformed_ticket_is_a_clear_error() {
    for bad in ["", "hello", "blobnotreallyaticket", "ferry://receive/xyz"] {
        let err = bad.parse::<ferry_core::Ticket>().unwrap_err();
        let err = Error::from(err);
        assert!(err.code().starts_with("ticket_"), "{bad:?}: {err}");
    }
}

#[tokio::test]
async fn stopped_share_is_refused() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("f.txt"), b"gone soon");
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _events) = share(&sender, &[src.join("f.txt")]).await;
    let ticket = share.ticket().to_string();
    share.stop();
    let dest = env.dir("dest");
    let err = receive(&receiver, &ticket, &dest).await.unwrap_err();
    assert_eq!(err.code(), "transfer_failed", "{err}");
    assert!(err.to_string().contains("no longer shares"), "{err}");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
}

#[tokio::test]
async fn through_a_local_relay_without_direct_addresses() {
    let (_map, relay_url, _server) = iroh::test_utils::run_relay_server().await.unwrap();
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("via-relay.bin"), &pseudo_random(200_000, 6));
    let relayed = |name: &str| {
        let mut c = ferry_core::NodeConfig::local(env.home(name));
        c.relay = ferry_core::RelayChoice::Custom(relay_url.clone());
        c.relay_insecure_tls = true;
        c
    };
    let sender = ferry_core::Node::spawn(relayed("a")).await.unwrap();
    let receiver = ferry_core::Node::spawn(relayed("b")).await.unwrap();
    let (share, _events) = share(&sender, &[src.join("via-relay.bin")]).await;
    let full: ferry_core::Ticket = share.ticket().parse().unwrap();
    // Keep only the node id and the relay URL.
    let addr =
        iroh::EndpointAddr::new(full.blob_ticket().addr().id).with_relay_url(relay_url.clone());
    assert_eq!(addr.ip_addrs().count(), 0);
    let ticket = iroh_blobs::ticket::BlobTicket::new(
        addr,
        full.blob_ticket().hash(),
        iroh_blobs::BlobFormat::HashSeq,
    );
    let dest = env.dir("dest");
    receive(&receiver, &ticket.to_string(), &dest)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dest.join("via-relay.bin")).unwrap(),
        pseudo_random(200_000, 6)
    );
}

/// Receives `ticket` into `dest`, cancelling at the first event `stop` picks; how it ended.
async fn receive_cancelled_at(
    receiver: &ferry_core::Node,
    ticket: &ferry_core::Ticket,
    dest: &Path,
    stop: impl Fn(&ReceiveEvent) -> bool,
) -> Result<ferry_core::ReceiveSummary, Error> {
    // The receive is polled in this task, not spawned: the event is seen (and the cancel
    // made) as soon as the receive next waits, not whenever the scheduler gets to this task,
    // which on a busy machine could be after the receive had finished.
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let attempt = receiver.receive(ticket, dest, tx, cancel.clone());
    tokio::pin!(attempt);
    loop {
        tokio::select! {
            biased;
            Some(event) = rx.recv() => {
                if stop(&event) {
                    cancel.cancel();
                }
            }
            res = &mut attempt => return res,
        }
    }
}

fn assert_no_leftovers(dest: &Path) {
    for entry in std::fs::read_dir(dest).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().starts_with(".ferry-partial"),
            "staging dir left behind: {name:?}"
        );
    }
}

#[tokio::test]
async fn history_records_transfers_and_a_retry_continues_its_record() {
    use ferry_core::history::{Direction, TransferState};
    use ferry_core::session::{local_receive, local_share};
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("doc.txt"), &pseudo_random(32 * 1024 * 1024, 11));
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let mut shared = local_share(sender.clone(), vec![src.join("doc.txt")]);
    let ticket = loop {
        if let Some(Ok(ferry_core::ShareEvent::Ready(info))) = shared.next().await {
            break info.ticket;
        }
    };
    let ticket: ferry_core::Ticket = ticket.parse().unwrap();
    let dest = env.dir("dest");

    // A first attempt, abandoned once the offer is known (dropping the stream cancels it).
    let mut first = local_receive(receiver.clone(), ticket.clone(), dest.clone(), None);
    while let Some(item) = first.next().await {
        if let Ok(ReceiveEvent::Offer { .. }) = item {
            break;
        }
    }
    drop(first);
    let cancelled = wait_for(|| {
        receiver
            .history()
            .list()
            .into_iter()
            .find(|r| r.state == TransferState::Cancelled)
    })
    .await;
    // The retry continues the same record.
    let mut ok = local_receive(receiver.clone(), ticket.clone(), dest.clone(), None);
    while let Some(item) = ok.next().await {
        if let Ok(ReceiveEvent::Done(_)) = item {
            break;
        }
        item.unwrap();
    }
    let list = receiver.history().list();
    let done = list
        .iter()
        .find(|r| r.dest.as_deref() == Some(dest.as_path()))
        .unwrap();
    assert_eq!(done.direction, Direction::Receive);
    assert_eq!(done.state, TransferState::Completed);
    assert_eq!(done.saved, vec![dest.join("doc.txt")]);
    assert_eq!(done.title, "doc.txt");
    assert_eq!(
        done.id, cancelled.id,
        "the retry continued the cancelled record"
    );
    assert_eq!(list.len(), 1);

    // The sender's history shows the share; stopping it completes the record.
    drop(shared);
    let sent = wait_for(|| {
        let sends = sender.history().list();
        (sends.len() == 1 && sends[0].state == TransferState::Completed).then(|| sends[0].clone())
    })
    .await;
    assert_eq!(sent.direction, Direction::Send);
    assert!(sent.peers_done >= 1);
}

/// Polls `f` until it returns something, failing after ten seconds.
async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A receive that had dialled a swarm member which had left (a handshake nobody answers) made
/// the node wait three seconds for that connection to drain before it could stop: the CLI sat
/// there after "saved".
#[tokio::test]
async fn a_node_stops_without_waiting_for_a_peer_that_never_answered() {
    let env = Env::new();
    let node = env.node("a").await;
    // A socket that reads what comes and never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let id = iroh::SecretKey::from_bytes(&[7; 32]).public();
    let addr = iroh::EndpointAddr::new(id).with_ip_addr(silent.local_addr().unwrap());
    let endpoint = node.endpoint().clone();
    let dial = tokio::spawn(async move { endpoint.connect(addr, b"ferry/swarm/0").await });
    // The handshake is under way once its first packet arrives.
    let mut buf = vec![0u8; 2048];
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), silent.recv(&mut buf))
        .await
        .expect("the dial reached the socket")
        .unwrap();
    assert!(got > 0);
    let started = std::time::Instant::now();
    node.shutdown().await.unwrap();
    // Draining a connection with no round trip measured takes about three seconds.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "stopping took {:?}",
        started.elapsed()
    );
    dial.abort();
}

/// The databases a node's stores open (iroh-blobs' and iroh-docs', with redb's defaults)
/// keep a bounded page cache: redb's default let each grow to 1 GiB, about half of a daemon's
/// memory in a folder of a million files.
#[tokio::test]
async fn databases_opened_once_a_node_runs_keep_a_bounded_cache() {
    use redb::{ReadableDatabase, TableDefinition};
    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
    let env = Env::new();
    let _node = env.node("a").await;
    let db = redb::Database::create(env.dir("db").join("test.redb")).unwrap();
    let value = vec![7u8; 4096];
    let tx = db.begin_write().unwrap();
    {
        let mut table = tx.open_table(TABLE).unwrap();
        for i in 0..10_000u64 {
            table.insert(i, value.as_slice()).unwrap();
        }
    }
    tx.commit().unwrap();
    let tx = db.begin_read().unwrap();
    let table = tx.open_table(TABLE).unwrap();
    for i in 0..10_000u64 {
        assert_eq!(table.get(i).unwrap().unwrap().value().len(), 4096);
    }
    let used = db.cache_stats().used_bytes();
    assert!(
        used <= 16 << 20,
        "40 MiB written and read back: {} MiB cached",
        used >> 20
    );
}
