//! The attacker's side: peers that ask for what they were not given, send what they should
//! not, or serve bad data. Built with iroh and iroh-blobs directly.

mod common;

use common::*;
use iroh_blobs::{
    api::Store,
    get::request::get_blob,
    protocol::{ChunkRanges, ChunkRangesSeq, GetManyRequest, GetRequest, PushRequest},
    store::mem::MemStore,
    Hash,
};

/// The root of a share: the hash its ticket names.
fn root(ticket: &str) -> Hash {
    ticket
        .parse::<ferry_core::Ticket>()
        .unwrap()
        .blob_ticket()
        .hash()
}

/// The hashes a share's collection lists: the metadata blob, then one per file.
async fn children(ticket: &str, node_store: &Store) -> Vec<Hash> {
    let bytes = node_store.get_bytes(root(ticket)).await.unwrap();
    iroh_blobs::hashseq::HashSeq::try_from(bytes)
        .unwrap()
        .iter()
        .collect()
}

#[tokio::test]
async fn only_live_shares_are_served_and_only_as_offered() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("public.txt"), b"shared on purpose");
    write(&src.join("private.txt"), b"shared once, then stopped");
    let node = env.node("victim").await;
    let (public, _e1) = share(&node, &[src.join("public.txt")]).await;
    let (private, _e2) = share(&node, &[src.join("private.txt")]).await;
    let public_children = children(public.ticket(), node.store()).await;
    let private_children = children(private.ticket(), node.store()).await;
    let private_root = root(private.ticket());
    let public_file = public_children[1];
    let private_file = private_children[1];
    private.stop();

    let ep = loopback_endpoint().await;
    let conn = ep.connect(node.addr(), iroh_blobs::ALPN).await.unwrap();

    // A blob of a live share is not served to a peer that has not asked for its share's root
    // (a peer that only learned the file's hash)...
    assert!(
        get_blob(conn.clone(), public_file).bytes().await.is_err(),
        "a share's file served without its ticket"
    );
    // ...and is, once the peer has shown the ticket by asking for the root.
    let public_root = root(public.ticket());
    let mem = MemStore::new();
    mem.remote()
        .execute_get(conn.clone(), GetRequest::all(public_root))
        .await
        .unwrap();
    let ok = get_blob(conn.clone(), public_file).bytes().await.unwrap();
    assert_eq!(&ok[..], b"shared on purpose");
    // A blob of a stopped share cannot, nor its collection, on the same open connection.
    assert!(
        get_blob(conn.clone(), private_file).bytes().await.is_err(),
        "stopped share served"
    );
    let res = mem
        .remote()
        .execute_get(conn.clone(), GetRequest::all(private_root))
        .await;
    assert!(res.is_err(), "stopped collection served");
    // A live share's child asked for as if it were a collection is refused: a file whose
    // bytes look like a list of hashes must not unlock other blobs.
    let res = mem
        .remote()
        .execute_get(conn.clone(), GetRequest::all(public_file))
        .await;
    assert!(res.is_err(), "a child was served as a hash sequence");
    // A hash nobody shares.
    assert!(get_blob(conn.clone(), Hash::new(b"guess"))
        .bytes()
        .await
        .is_err());
    // Request kinds Ferry does not use are refused.
    let many = GetManyRequest::builder()
        .hash(public_file, ChunkRanges::all())
        .build();
    assert!(
        mem.remote()
            .execute_get_many(conn.clone(), many)
            .await
            .is_err(),
        "get-many served"
    );
    let pushed = mem.add_slice(b"unwanted upload").temp_tag().await.unwrap();
    let push = PushRequest::new(pushed.hash(), ChunkRangesSeq::root());
    let _ = mem.remote().execute_push(conn.clone(), push).await;
    assert!(
        !node.store().has(pushed.hash()).await.unwrap(),
        "a push wrote into the victim's store"
    );
}

/// The holder of one ticket who names a file of another live share gets nothing, and the
/// refusal looks exactly like the one for a hash the node does not hold.
#[tokio::test]
async fn one_ticket_does_not_open_another_live_share() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("for-alice.txt"), b"alice's");
    write(&src.join("for-bob.txt"), b"bob's only");
    let node = env.node("victim").await;
    let (alice_share, _e1) = share(&node, &[src.join("for-alice.txt")]).await;
    let (bob_share, _e2) = share(&node, &[src.join("for-bob.txt")]).await;
    let bobs_file = children(bob_share.ticket(), node.store()).await[1];
    let bobs_meta = children(bob_share.ticket(), node.store()).await[0];

    // Alice receives her share like anyone would, then asks for Bob's file on the same
    // connection and on a new one.
    let alice = loopback_endpoint().await;
    let conn = alice.connect(node.addr(), iroh_blobs::ALPN).await.unwrap();
    let alice_root = root(alice_share.ticket());
    let mem = MemStore::new();
    mem.remote()
        .execute_get(conn.clone(), GetRequest::all(alice_root))
        .await
        .unwrap();
    let refusal = |e: String| {
        e.replace(&bobs_file.to_string(), "H")
            .replace(&bobs_meta.to_string(), "H")
    };
    let for_bob = get_blob(conn.clone(), bobs_file).bytes().await;
    let guess = get_blob(conn.clone(), Hash::new(b"nobody has this"))
        .bytes()
        .await;
    assert!(for_bob.is_err(), "another live share's file was served");
    assert!(get_blob(conn.clone(), bobs_meta).bytes().await.is_err());
    let (a, b) = (
        refusal(format!("{:?}", for_bob.unwrap_err())),
        format!("{:?}", guess.unwrap_err())
            .replace(&Hash::new(b"nobody has this").to_string(), "H"),
    );
    assert_eq!(a, b, "a held hash is refused like an unknown one");
    let conn2 = alice.connect(node.addr(), iroh_blobs::ALPN).await.unwrap();
    assert!(get_blob(conn2, bobs_file).bytes().await.is_err());
    // Bob, with his ticket, gets his file.
    let dest = env.dir("bob");
    let bob = env.node("bob").await;
    receive(&bob, bob_share.ticket(), &dest).await.unwrap();
    assert_eq!(
        read(&dest.join("for-bob.txt")).as_deref(),
        Some("bob's only")
    );
}

#[tokio::test]
async fn data_changed_after_sharing_is_detected_and_never_written() {
    let env = Env::new();
    let src = env.dir("src");
    let original = pseudo_random(2 * 1024 * 1024, 21);
    write(&src.join("doc.bin"), &original);
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _e) = share(&sender, &[src.join("doc.bin")]).await;
    // The shared file is edited in place (same size): the sender now serves bytes that do not
    // match the hash in the ticket.
    let mut tampered = original.clone();
    for b in &mut tampered[1_000_000..1_100_000] {
        *b ^= 0xff;
    }
    std::fs::write(src.join("doc.bin"), &tampered).unwrap();
    let dest = env.dir("dest");
    let err = receive(&receiver, share.ticket(), &dest).await.unwrap_err();
    assert_eq!(err.code(), "bad_data", "{err}");
    assert!(err.to_string().contains("changed or removed"), "{err}");
    assert_eq!(
        std::fs::read_dir(&dest).unwrap().count(),
        0,
        "no corrupt file appears"
    );
}

#[tokio::test]
async fn not_enough_space_is_refused_before_downloading() {
    // A 2 MiB tmpfs as the destination (the test runs as root in CI, like every other test that
    // needs a private mount or network namespace).
    let env = Env::new();
    let small = env.dir("small-disk");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&small)
        .status()
        .expect("mount");
    assert!(mounted.success(), "mounting a tmpfs needs root");
    let src = env.dir("src");
    write(&src.join("big.bin"), &pseudo_random(8 * 1024 * 1024, 22));
    let (sender, receiver) = (env.node("a").await, env.node("b").await);
    let (share, _e) = share(&sender, &[src.join("big.bin")]).await;
    let res = receive(&receiver, share.ticket(), &small).await;
    let listing: Vec<_> = std::fs::read_dir(&small).unwrap().collect();
    std::process::Command::new("umount")
        .arg(&small)
        .status()
        .ok();
    let err = res.unwrap_err();
    assert_eq!(err.code(), "disk_full", "{err}");
    assert!(err.to_string().contains("free space"), "{err}");
    assert!(listing.is_empty(), "nothing written");
}

/// A folder's files and records go to its peers only: a stranger who knows (or guesses) the
/// hash of a file in someone's synced folder gets nothing, while a member got it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_content_goes_only_to_the_folders_peers() {
    let env = Env::new();
    let secret = b"the team's private notes";
    let SharedFolder { a, b, a_dir, .. } =
        synced_folder(&env, false, &[("notes.txt", secret)]).await;

    let stranger = loopback_endpoint().await;
    let conn = stranger.connect(a.addr(), iroh_blobs::ALPN).await.unwrap();
    let hash = Hash::new(secret);
    assert!(
        get_blob(conn.clone(), hash).bytes().await.is_err(),
        "a stranger was served a folder's file"
    );
    // Leaving the folder stops serving it to its former peers too.
    a.folder_leave(a_dir.clone()).await.unwrap();
    let member = b
        .endpoint()
        .connect(a.addr(), iroh_blobs::ALPN)
        .await
        .unwrap();
    assert!(
        get_blob(member, hash).bytes().await.is_err(),
        "a left folder is still served"
    );
}

/// A read-only member cannot write: an entry it forges with its own author is refused by the
/// other peers (iroh-docs checks the write capability) and never reaches their disks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_members_forged_entry_is_not_accepted() {
    use ferry_core::folder::version::{FileVersion, RecordHash, VersionVector};
    let env = Env::new();
    let SharedFolder {
        a,
        b,
        a_dir,
        ticket,
        ..
    } = synced_folder(&env, true, &[("doc.txt", b"original")]).await;

    // The reader crafts a record that would replace doc.txt, with a vector dominating a's.
    let forged_content = b"forged by a reader";
    let forged_hash = b.store().add_slice(forged_content).await.unwrap().hash;
    let record = FileVersion {
        hash: RecordHash::from(forged_hash),
        size: forged_content.len() as u64,
        mtime_ms: u64::MAX / 2,
        deleted: false,
        device: "forger".into(),
        device_name: "forger".into(),
        version: [("forger", 1000)].into_iter().collect::<VersionVector>(),
        blocks: None,
        exec: false,
        dir: false,
    };
    let doc = b
        .docs()
        .open(ticket_namespace(&ticket))
        .await
        .unwrap()
        .expect("b has the folder's document");
    let author = b.docs().author_default().await.unwrap();
    let inserted = doc.set_bytes(author, "f/doc.txt\0", record.encode()).await;
    assert!(
        inserted.is_err(),
        "a read-only replica accepted a local write"
    );
    // And a's document and disk are unchanged.
    let a_doc = a
        .docs()
        .open(ticket_namespace(&ticket))
        .await
        .unwrap()
        .unwrap();
    let entries = a_doc
        .get_many(iroh_docs::store::Query::key_exact("f/doc.txt\0"))
        .await
        .unwrap();
    use n0_future::StreamExt;
    let entries: Vec<_> = entries.collect().await;
    assert_eq!(entries.len(), 1, "only a's own record for doc.txt");
    assert_eq!(std::fs::read(a_dir.join("doc.txt")).unwrap(), b"original");
}

/// One peer cannot hold more than a bounded number of connections to a node's provider: the
/// first ones are served, the one over the limit is refused.
#[tokio::test]
async fn connections_per_peer_are_limited() {
    let env = Env::new();
    let src = env.dir("src");
    write(&src.join("f.txt"), b"shared");
    let node = env.node("victim").await;
    let (shared, _events) = share(&node, &[src.join("f.txt")]).await;
    // The share's root: served to anyone with the ticket.
    let file = root(shared.ticket());
    let ep = loopback_endpoint().await;
    let mut conns = Vec::new();
    for _ in 0..ferry_core::access::MAX_CONNECTIONS_PER_PEER {
        let conn = ep.connect(node.addr(), iroh_blobs::ALPN).await.unwrap();
        assert!(get_blob(conn.clone(), file).bytes().await.is_ok());
        conns.push(conn);
    }
    let extra = ep.connect(node.addr(), iroh_blobs::ALPN).await.unwrap();
    assert!(
        get_blob(extra, file).bytes().await.is_err(),
        "a connection over the limit was served"
    );
    // Closing one frees a place.
    conns.pop().unwrap().close(0u32.into(), b"done");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let again = ep.connect(node.addr(), iroh_blobs::ALPN).await.unwrap();
        if get_blob(again, file).bytes().await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a freed place was never reused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
