//! A hostile sender, built with iroh and iroh-blobs directly, offers names that try to escape
//! the target folder. Ferry must refuse each one before writing anything anywhere.

mod common;

use common::*;
use iroh::protocol::Router;
use iroh_blobs::{
    format::collection::Collection, store::mem::MemStore, ticket::BlobTicket, BlobFormat,
    BlobsProtocol,
};

/// Serves a collection with the given names (every entry holding `payload`) with no checks.
async fn hostile_sender(names: &[&str]) -> (Router, String) {
    let endpoint = loopback_endpoint().await;
    let store = MemStore::new();
    let mut collection = Collection::default();
    let mut tags = Vec::new();
    for name in names {
        let tag = store.add_slice(b"pwned").temp_tag().await.unwrap();
        collection.push(name.to_string(), tag.hash());
        tags.push(tag);
    }
    let root = collection.store(&store).await.unwrap();
    std::mem::forget(tags);
    let ticket = BlobTicket::new(endpoint.addr(), root.hash(), BlobFormat::HashSeq);
    std::mem::forget(root);
    let router = Router::builder(endpoint)
        .accept(iroh_blobs::ALPN, BlobsProtocol::new(&store, None))
        .spawn();
    (router, ticket.to_string())
}

#[tokio::test]
async fn every_escaping_name_is_refused_and_nothing_is_written() {
    let cases: &[&[&str]] = &[
        &["../escaped.txt"],
        &["a/../../escaped.txt"],
        &["/tmp/ferry-absolute-escape.txt"],
        &["a\\..\\..\\escaped.txt"],
        &["C:escaped.txt"],
        &["\\\\server\\share\\escaped.txt"],
        &["ok/\0escaped.txt"],
        &["line\nbreak.txt"],
        &[""],
        &["."],
        &["a//escaped.txt"],
        &["./escaped.txt"],
        // A harmless name before the bad one must not be written either.
        &["innocent.txt", "../escaped.txt"],
        &["dup.txt", "dup.txt"],
    ];
    let env = Env::new();
    let receiver = env.node("victim").await;
    for (i, names) in cases.iter().enumerate() {
        let (router, ticket) = hostile_sender(names).await;
        let outer = env.dir(&format!("case{i}"));
        let dest = outer.join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let err = receive(&receiver, &ticket, &dest)
            .await
            .expect_err(&format!("{names:?} must be refused"));
        assert_eq!(err.code(), "unsafe_name", "{names:?}: {err}");
        let bad = names.last().unwrap();
        if !bad.is_empty() {
            assert!(
                err.to_string().contains(&format!("{bad:?}")),
                "the error names the offending entry: {err}"
            );
        }
        let listed: Vec<_> = std::fs::read_dir(&outer).unwrap().collect();
        assert_eq!(
            listed.len(),
            1,
            "only dest exists beside dest in case {names:?}"
        );
        assert_eq!(
            std::fs::read_dir(&dest).unwrap().count(),
            0,
            "dest stays empty"
        );
        router.shutdown().await.unwrap();
    }
    assert!(!std::path::Path::new("/tmp/ferry-absolute-escape.txt").exists());
    assert!(!env.dir.path().join("escaped.txt").exists());
}

#[tokio::test]
async fn ferry_receives_from_a_plain_iroh_blobs_sender() {
    // The same raw sender with good names: shows the refusals above are about names only.
    let (router, ticket) = hostile_sender(&["fine/one.txt", "fine/two.txt"]).await;
    let env = Env::new();
    let receiver = env.node("r").await;
    let dest = env.dir("dest");
    receive(&receiver, &ticket, &dest).await.unwrap();
    assert_eq!(std::fs::read(dest.join("fine/one.txt")).unwrap(), b"pwned");
    router.shutdown().await.unwrap();
}
