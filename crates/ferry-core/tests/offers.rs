//! Sending to a device: offers accepted, declined, auto-accepted, and refused when hostile.

mod common;

use std::time::Duration;

use common::*;
use ferry_core::{
    offers::{offer, Answer, OfferMsg, MAX_OFFER},
    Node,
};

fn name(env: &Env, node: &str, device: &str) {
    let home = env.home(node);
    std::fs::create_dir_all(&home).unwrap();
    let mut s = ferry_core::settings::Settings::load(&home);
    s.device_name = device.into();
    s.save(&home).unwrap();
}

/// Shares `data` as a file on `node`; returns its ticket.
async fn shared(env: &Env, node: &Node, file: &str, data: &[u8]) -> (ferry_core::Share, String) {
    let path = env.dir(&format!("src-{file}")).join(file);
    write(&path, data);
    let (share, _events) = share(node, &[path]).await;
    let ticket = share.ticket().to_string();
    (share, ticket)
}

async fn pending_one(node: &Node) -> ferry_core::offers::IncomingOffer {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(o) = node.incoming_offers().into_iter().next() {
            return o;
        }
        assert!(std::time::Instant::now() < deadline, "no offer arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_accepted_arrives_and_one_declined_leaves_nothing() {
    let env = Env::new();
    name(&env, "a", "Alice laptop");
    name(&env, "b", "Bob desktop");
    let a = env.node("a").await;
    let b = env.node("b").await;
    let data = pseudo_random(300_000, 3);
    let (_share, ticket) = shared(&env, &a, "film.bin", &data).await;
    let ticket: ferry_core::Ticket = ticket.parse().unwrap();

    let to = b.endpoint().addr();
    let asking = {
        let (a, t) = (a.clone(), ticket.clone());
        tokio::spawn(async move { a.offer_to(to, &t, "film.bin".into(), 1, 300_000).await })
    };
    let offer = pending_one(&b).await;
    assert_eq!(
        (offer.name.as_str(), offer.contact),
        ("Alice laptop", false)
    );
    assert_eq!(
        (offer.title.as_str(), offer.files, offer.size),
        ("film.bin", 1, 300_000)
    );
    let out = env.dir("b-in");
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing before accepting"
    );
    let accepted = b.answer_offer(offer.id, true).unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), Answer::Accepted);
    receive(&b, &accepted.ticket, &out).await.unwrap();
    assert_eq!(std::fs::read(out.join("film.bin")).unwrap(), data);
    // Each knows the other by name now.
    assert_eq!(
        a.contacts().get(&b.id().to_string()).unwrap().name,
        "Bob desktop"
    );
    assert_eq!(
        b.contacts().get(&a.id().to_string()).unwrap().name,
        "Alice laptop"
    );

    // Declined: the sender hears it, nothing is written.
    let to = b.endpoint().addr();
    let asking = {
        let (a, t) = (a.clone(), ticket.clone());
        tokio::spawn(async move { a.offer_to(to, &t, "again".into(), 1, 300_000).await })
    };
    let offer = pending_one(&b).await;
    assert!(offer.contact, "a is a contact now");
    b.answer_offer(offer.id, false).unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), Answer::Declined);
    assert!(b.incoming_offers().is_empty());
    assert!(b.answer_offer(offer.id, true).is_err(), "answered once");
    let declined = env.dir("b-declined");
    assert!(std::fs::read_dir(&declined).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_rule_accepts_unattended_while_a_strangers_offer_waits() {
    let env = Env::new();
    let a = env.node("a").await;
    let b = env.node("b").await;
    let c = env.node("c").await;
    let inbox = env.dir("b-inbox");
    b.contacts().seen(&a.id().to_string(), "Alice").unwrap();
    b.contacts()
        .auto_accept(&a.id().to_string(), Some(inbox.clone()))
        .unwrap();
    let data = pseudo_random(50_000, 9);
    let (_sa, ta) = shared(&env, &a, "from-a.bin", &data).await;
    let (_sc, tc) = shared(&env, &c, "from-c.bin", b"stranger").await;

    let to = b.endpoint().addr();
    let from_c = {
        let (c, t) = (c.clone(), tc.parse().unwrap());
        tokio::spawn(async move { c.offer_to(to, &t, "from-c.bin".into(), 1, 8).await })
    };
    let waiting = pending_one(&b).await;
    assert_eq!(waiting.from, c.id().to_string());
    let answer = a
        .offer_to(
            b.endpoint().addr(),
            &ta.parse().unwrap(),
            "from-a.bin".into(),
            1,
            50_000,
        )
        .await
        .unwrap();
    assert_eq!(answer, Answer::Accepted);
    eventually("a's file arrives unattended", || {
        std::fs::read(inbox.join("from-a.bin")).ok() == Some(data.clone())
    })
    .await;
    assert_eq!(
        b.incoming_offers().len(),
        1,
        "the stranger's offer still waits"
    );
    assert!(!from_c.is_finished());
    assert!(!inbox.join("from-c.bin").exists());
    from_c.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_offers_are_refused() {
    let env = Env::new();
    let a = env.node("a").await;
    let b = env.node("b").await;
    let c = env.node("c").await;
    let (_sc, c_ticket) = shared(&env, &c, "c.bin", b"c's file").await;
    let msg = |ticket: &str| OfferMsg {
        name: "Evil\u{202E}txt.exe".into(),
        ticket: ticket.into(),
        title: format!("\u{1b}[8m{}\n", "x".repeat(1_000)),
        files: u64::MAX,
        size: u64::MAX,
    };
    // A ticket of another device: b would fetch from a third party.
    let reply = offer(a.endpoint(), b.endpoint().addr(), &msg(&c_ticket))
        .await
        .unwrap();
    assert!(matches!(reply.answer, Answer::Invalid(_)), "{reply:?}");
    // Garbage, and a message over the size limit.
    let reply = offer(a.endpoint(), b.endpoint().addr(), &msg("garbage"))
        .await
        .unwrap();
    assert!(matches!(reply.answer, Answer::Invalid(_)), "{reply:?}");
    let huge = OfferMsg {
        ticket: "x".repeat(MAX_OFFER * 2),
        ..msg("")
    };
    let reply = offer(a.endpoint(), b.endpoint().addr(), &huge)
        .await
        .unwrap();
    assert!(matches!(reply.answer, Answer::Invalid(_)), "{reply:?}");
    assert!(b.incoming_offers().is_empty(), "nothing was filed");

    // A flood of valid offers: a few wait, the rest are refused at once.
    let (_sa, a_ticket) = shared(&env, &a, "a.bin", b"a's file").await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (a, to, m) = (a.clone(), b.endpoint().addr(), msg(&a_ticket));
            tokio::spawn(async move { offer(a.endpoint(), to, &m).await })
        })
        .collect();
    let kept = ferry_core::offers::MAX_PENDING_PER_PEER;
    eventually("the offers over the limits are answered at once", || {
        tasks.iter().filter(|t| t.is_finished()).count() == 6 - kept
            && b.incoming_offers().len() == kept
    })
    .await;
    let pending = b.incoming_offers();
    let mut waiting = Vec::new();
    for t in tasks {
        if t.is_finished() {
            assert_eq!(t.await.unwrap().unwrap().answer, Answer::Busy);
        } else {
            waiting.push(t);
        }
    }
    assert_eq!(waiting.len(), kept);
    // What is shown is cleaned and bounded.
    assert_eq!(pending[0].name, "Eviltxt.exe");
    assert!(pending[0].title.chars().count() <= 200);
    assert!(
        !pending[0].title.contains('\u{1b}') && !pending[0].title.contains('\n'),
        "no terminal escapes or line breaks reach the screen"
    );
    // A sender that goes takes its offers with it.
    for t in waiting {
        t.abort();
    }
    eventually("the gone sender's offers are withdrawn", || {
        b.incoming_offers().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_device_tells_its_name_only_to_its_contacts() {
    use ferry_core::nearby::hello::ask;
    let env = Env::new();
    name(&env, "a", "Alice laptop");
    // What a hostile device might call itself: escapes and a line break are cut.
    name(&env, "b", "Bob\u{1b}[2J\ndesktop\u{202e}");
    let a = env.node("a").await;
    let b = env.node("b").await;
    let bob = ask(a.endpoint(), b.endpoint().addr()).await.unwrap();
    assert_eq!(bob.name, "Bob[2Jdesktop");
    assert_eq!(bob.via, Some(ferry_core::progress::Via::Direct));
    // Hidden: a stranger learns nothing ...
    b.set_visible(false).unwrap();
    assert_eq!(
        ask(a.endpoint(), b.endpoint().addr()).await.unwrap().name,
        ""
    );
    // ... a contact still does; and a device that is not there is an error, not a hang.
    b.contacts()
        .seen(&a.id().to_string(), "Alice laptop")
        .unwrap();
    let bob = ask(a.endpoint(), b.endpoint().addr()).await.unwrap();
    assert_eq!(bob.name, "Bob[2Jdesktop");
    let b_addr = b.endpoint().addr();
    b.shutdown().await.unwrap();
    assert!(ask(a.endpoint(), b_addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_list_contacts_with_their_online_state() {
    let env = Env::new();
    name(&env, "b", "Bob desktop");
    let a = env.node("a").await;
    let b = env.node("b").await;
    let c = env.node("c").await;
    a.contacts()
        .seen(&b.id().to_string(), "Bob desktop")
        .unwrap();
    a.contacts().seen(&c.id().to_string(), "Carol").unwrap();
    // a knows where b is (as it would from an earlier exchange); c has gone.
    a.endpoint().address_lookup().unwrap().add({
        let m = iroh::address_lookup::MemoryLookup::new();
        m.add_endpoint_info(b.endpoint().addr());
        m
    });
    c.shutdown().await.unwrap();
    let list = a.devices(true).await;
    let names: Vec<(&str, bool)> = list.iter().map(|d| (d.name.as_str(), d.online)).collect();
    assert_eq!(names, vec![("Bob desktop", true), ("Carol", false)]);
    assert_eq!(list[0].via, Some(ferry_core::progress::Via::Direct));
    assert!(!list[0].nearby && list[0].contact);
    // Without asking, only what is known now counts: b is connected from the probe.
    assert!(a.devices(false).await[0].online);
    // Picked by name: a contact's name, or an id.
    assert_eq!(a.device("bob desktop").unwrap().id, b.id());
    assert!(a.device("Dave").is_err());
}
