//! A read-write member of a folder is a stranger with a key. The attacker here is a bare iroh
//! node (iroh-blobs serving everything, iroh-docs, gossip) that holds the folder's write ticket
//! and inserts records Ferry would never write; the victim is a Ferry node. Each test asserts
//! the victim's disk: its folder, its state and the files outside it.

mod common;

use std::path::Path;

use common::*;
use ferry_core::{
    folder::version::{FileVersion, RecordHash},
    Node,
};
use iroh::protocol::Router;
use iroh_blobs::{store::mem::MemStore, BlobsProtocol};
use iroh_docs::{api::Doc, AuthorId, DocTicket};

/// A member that follows no rules: it writes whatever records it likes into the document.
struct Attacker {
    router: Router,
    doc: Doc,
    author: AuthorId,
    store: MemStore,
    device: String,
}

impl Attacker {
    /// Joins the folder `victim` shares at `dir`, with write access.
    async fn member_of(victim: &Node, dir: &Path) -> Attacker {
        let ticket = victim.folder_share(dir.to_path_buf(), false).await.unwrap();
        Attacker::join(&ticket).await
    }

    async fn join(ticket: &str) -> Attacker {
        let endpoint = loopback_endpoint().await;
        let store = MemStore::new();
        let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
        let docs = iroh_docs::protocol::Docs::memory()
            .spawn(endpoint.clone(), (*store).clone(), gossip.clone())
            .await
            .unwrap();
        let router = Router::builder(endpoint.clone())
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(&store, None))
            .accept(iroh_gossip::ALPN, gossip)
            .accept(iroh_docs::ALPN, docs.clone())
            .spawn();
        let ticket: DocTicket = ticket.parse().unwrap();
        let doc = docs.import(ticket).await.unwrap();
        let author = docs.author_create().await.unwrap();
        Attacker {
            device: endpoint.id().to_string(),
            router,
            doc,
            author,
            store,
        }
    }

    /// Publishes `content` at `path` with a record that claims whatever `edit` makes it claim.
    async fn put(&self, path: &str, content: &[u8], edit: impl FnOnce(&mut FileVersion)) {
        let tag = self.store.add_slice(content).temp_tag().await.unwrap();
        std::mem::forget(tag);
        self.claim(path, content, edit).await;
    }

    /// Publishes a record of `content` at `path` without holding the content: the attacker
    /// only knows its hash and size.
    async fn claim(&self, path: &str, content: &[u8], edit: impl FnOnce(&mut FileVersion)) {
        let mut v = FileVersion {
            hash: RecordHash::from(iroh_blobs::Hash::new(content)),
            size: content.len() as u64,
            mtime_ms: 4_000_000_000_000,
            deleted: false,
            device: self.device.as_str().into(),
            device_name: "mallory".into(),
            version: Default::default(),
            blocks: None,
            exec: false,
            dir: false,
        };
        v.version = v.version.bump(&self.device);
        edit(&mut v);
        self.doc
            .set_bytes(self.author, format!("f/{path}"), v.encode())
            .await
            .unwrap();
    }
}

/// Waits until `node` has written `marker` (published after everything else) and its folder
/// has settled, so that every earlier record has been looked at.
async fn settled(node: &Node, dir: &Path, marker: &str) {
    use ferry_core::folder::activity::FolderState;
    eventually("the marker arrives", || dir.join(marker).exists()).await;
    eventually("the folder settles", || {
        node.folder_statuses()[0]
            .activity
            .as_ref()
            .is_some_and(|a| a.state != FolderState::Scanning && a.state != FolderState::Syncing)
    })
    .await;
}

/// Every file and directory below `root`, relative, sorted (links listed, not followed).
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Records that name Ferry's own state, at any depth and in any case, or its temporary files,
/// are refused: nothing is written there, and a forged trash entry cannot make the victim
/// delete a directory outside the folder when it prunes its trash (at the next start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_cannot_reach_ferrys_own_state() {
    let env = Env::new();
    let outside = env.dir("outside");
    write(&outside.join("precious.txt"), b"not the folder's");
    let dir = env.dir("victim-folder");
    write(&dir.join("hello.txt"), b"hello");
    let victim = env.node("victim").await;
    let mallory = Attacker::member_of(&victim, &dir).await;

    // The victim's trash prunes entries older than its limit: this one is, and its id climbs
    // from the trash directory to `outside`.
    let forged_trash = serde_json::json!({
        "id": "../../../outside",
        "original": "x",
        "trashed_at_ms": 0,
        "size": 1
    });
    let forged_trash = serde_json::to_vec(&forged_trash).unwrap();
    mallory
        .put(
            ".ferry/trash/0000000000001-aaaaaaaa.json",
            &forged_trash,
            |_| {},
        )
        .await;
    mallory
        .put(".ferry/index.json", b"{\"doc\":\"x\",\"files\":{}}", |_| {})
        .await;
    mallory
        .put("sub/.ferry/trash/x", b"nested state", |_| {})
        .await;
    mallory.put(".FERRY/trash/y", b"other case", |_| {}).await;
    mallory
        .put("hello.txt.ferry-tmp", b"a temp file", |_| {})
        .await;
    mallory
        .put(".ferry-partial-0123456789abcdef/a.txt", b"staging", |_| {})
        .await;
    mallory.put("marker.txt", b"after everything", |_| {}).await;
    settled(&victim, &dir, "marker.txt").await;

    // A restart runs a full pass, which prunes the trash.
    victim.shutdown().await.unwrap();
    drop(victim);
    copy_dir(&env.home("victim"), &env.home("victim-again"));
    let victim = env.node("victim-again").await;
    settled(&victim, &dir, "marker.txt").await;

    assert_eq!(
        std::fs::read(outside.join("precious.txt")).ok().as_deref(),
        Some(&b"not the folder's"[..]),
        "a directory outside the folder was deleted"
    );
    let files = tree(&dir);
    for bad in [
        ".ferry/trash/0000000000001-aaaaaaaa.json",
        "sub",
        ".FERRY",
        "hello.txt.ferry-tmp",
        ".ferry-partial-0123456789abcdef",
    ] {
        assert!(!files.iter().any(|f| f == bad), "{bad} written: {files:?}");
    }
    let index = std::fs::read_to_string(dir.join(".ferry/index.json")).unwrap();
    assert!(
        index.contains("hello.txt"),
        "the victim's own index: {index}"
    );
    assert_eq!(read(&dir.join("hello.txt")).as_deref(), Some("hello"));
}

/// A link inside the folder that leads out of it is never written through, at any depth: a
/// record for a path below it creates nothing outside and is reported, not retried forever.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_never_follow_a_link_out_of_the_folder() {
    let env = Env::new();
    let outside = env.dir("outside");
    write(&outside.join("precious.txt"), b"not the folder's");
    let dir = env.dir("victim-folder");
    write(&dir.join("real/kept.txt"), b"kept");
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("real/deeper")).unwrap();
    let victim = env.node("victim").await;
    let mallory = Attacker::member_of(&victim, &dir).await;

    mallory.put("link/escape.txt", b"escaped", |_| {}).await;
    mallory
        .put("real/deeper/sub/escape.txt", b"escaped", |_| {})
        .await;
    mallory
        .put("link/precious.txt", b"overwritten", |_| {})
        .await;
    // A deletion of a file reached through the link.
    mallory
        .put("link/precious.txt", b"", |v| {
            v.deleted = true;
            v.hash = RecordHash::NONE;
            v.version = v.version.bump(&v.device.clone());
        })
        .await;
    mallory.put("marker.txt", b"after everything", |_| {}).await;
    settled(&victim, &dir, "marker.txt").await;

    assert_eq!(
        tree(&outside),
        ["precious.txt"],
        "something was written outside"
    );
    assert_eq!(
        read(&outside.join("precious.txt")).as_deref(),
        Some("not the folder's")
    );
    assert!(std::fs::symlink_metadata(dir.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read(&dir.join("real/kept.txt")).as_deref(), Some("kept"));
}

/// A member who knows the hash of another share's file (or another folder's) names it in a
/// record: the victim must neither copy that blob into this folder (where the member would
/// then receive it) nor serve it to the member, and asks the folder's peers for it as it
/// would for any hash it does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_pull_another_shares_file_through_the_folder() {
    let env = Env::new();
    let src = env.dir("private");
    let secret = b"the victim's private file, shared with someone else".to_vec();
    write(&src.join("secret.txt"), &secret);
    let dir = env.dir("victim-folder");
    write(&dir.join("hello.txt"), b"hello");
    let victim = env.node("victim").await;
    // A one-shot share to someone else is live on the same node.
    let (_share, _events) = share(&victim, &[src.join("secret.txt")]).await;
    let mallory = Attacker::member_of(&victim, &dir).await;
    mallory.claim("stolen.txt", &secret, |_| {}).await;
    mallory.put("marker.txt", b"after everything", |_| {}).await;
    eventually("the marker arrives", || dir.join("marker.txt").exists()).await;
    // The victim looked at the record: it either wrote the file or waits for content no peer
    // serves...
    eventually("the record is seen", || {
        dir.join("stolen.txt").exists()
            || victim.folder_statuses()[0]
                .activity
                .as_ref()
                .is_some_and(|a| a.waiting > 0)
    })
    .await;
    assert!(
        !dir.join("stolen.txt").exists(),
        "another share's file was copied into the folder"
    );
    // ...and serves the hash to the member no more than before.
    let conn = mallory
        .router
        .endpoint()
        .connect(victim.addr(), iroh_blobs::ALPN)
        .await
        .unwrap();
    let got = iroh_blobs::get::request::get_blob(conn, iroh_blobs::Hash::new(&secret))
        .bytes()
        .await;
    assert!(
        got.is_err(),
        "the victim served another share's file to a folder member"
    );
}

/// Sizes are bounded before anything is fetched: a record that claims a small file for a
/// large blob costs the victim no more than the size it claimed, and the path is reported
/// as not synced instead of being retried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_cannot_make_the_victim_fetch_more_than_it_claims() {
    use ferry_core::folder::activity::FolderState;
    let env = Env::new();
    let dir = env.dir("victim-folder");
    write(&dir.join("hello.txt"), b"hello");
    let victim = env.node("victim").await;
    let mallory = Attacker::member_of(&victim, &dir).await;
    let huge = pseudo_random(32 * 1024 * 1024, 9);
    let received = || victim.endpoint().metrics().socket.recv_data_ipv4.get();
    let before = received();
    mallory.put("small.txt", &huge, |v| v.size = 1000).await;
    // A record blob far over the record limit, named by the entry.
    let big_record = pseudo_random(4 * 1024 * 1024, 10);
    let tag = mallory
        .store
        .add_slice(&big_record)
        .temp_tag()
        .await
        .unwrap();
    mallory
        .doc
        .set_hash(mallory.author, "f/huge-record.txt", tag.hash(), 100)
        .await
        .unwrap();
    std::mem::forget(tag);
    mallory.put("marker.txt", b"after everything", |_| {}).await;
    eventually("the marker arrives", || dir.join("marker.txt").exists()).await;
    eventually("the lying record is reported, not retried", || {
        victim.folder_statuses()[0]
            .activity
            .as_ref()
            .is_some_and(|a| {
                a.state == FolderState::Incomplete
                    && a.not_synced.iter().any(|n| n.path == "small.txt")
            })
    })
    .await;
    let got = received() - before;
    assert!(
        got < 2 * 1024 * 1024,
        "the victim received {got} bytes for records that claim a few KiB"
    );
    assert!(!dir.join("small.txt").exists() && !dir.join("huge-record.txt").exists());
}
