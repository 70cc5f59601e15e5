//! Nearby devices without internet: two `ferry run` daemons in two network namespaces joined
//! by a veth pair (no relay, no DNS, nothing else on the wire) find each other over mDNS by
//! name and send to each other by that name. Multicast leaves neither namespace.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use ferry_e2e::*;

/// A `ferry` command for `home` inside `ns`: no relay, bound to every interface there (the
/// veth and the namespace's own loopback).
fn ferry_in(ns: &NetNs, home: &Path) -> Command {
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("--home")
        .arg(home)
        .args(["--relay", "disabled"])
        .env_remove("FERRY_LOG")
        .env_remove("RUST_LOG");
    ns.wrap(&cmd)
}

fn ok(ns: &NetNs, home: &Path, args: &[&str]) -> String {
    let out = ferry_in(ns, home).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn devices(ns: &NetNs, home: &Path) -> Vec<serde_json::Value> {
    ok(ns, home, &["--json", "devices"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls `home`'s devices until the list satisfies `want`, for up to 30 s.
fn until(
    ns: &NetNs,
    home: &Path,
    what: &str,
    want: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = devices(ns, home);
        if want(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {list:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `home`'s devices until one satisfies `want`, for up to 30 s.
fn until_device(
    ns: &NetNs,
    home: &Path,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let list = until(ns, home, what, |list| list.iter().any(&want));
    list.into_iter().find(|d| want(d)).unwrap()
}

/// The first offer waiting at `home`, within 30 s.
fn waiting(ns: &NetNs, home: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = ok(ns, home, &["--json", "incoming"]).lines().next() {
            return serde_json::from_str(line).unwrap();
        }
        assert!(Instant::now() < deadline, "no offer arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_devices_on_one_network_find_each_other_by_name_and_send() {
    let (ns_a, ns_b) = NetNs::pair("near");
    let tmp = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&ns_a, &home_a, &["name", "Alpha"]);
    ok(&ns_b, &home_b, &["name", "Beta"]);
    let mut daemons = Vec::new();
    for (ns, home) in [(&ns_a, &home_a), (&ns_b, &home_b)] {
        let mut cmd = ferry_in(ns, home);
        cmd.arg("run");
        let mut p = Proc::spawn(cmd);
        p.wait_stderr(Duration::from_secs(60), |l| l.contains("running"));
        daemons.push(p);
    }
    let near =
        |name: &'static str| move |d: &serde_json::Value| d["name"] == name && d["nearby"] == true;

    // Each finds the other by the name it gives itself.
    let alpha = until_device(&ns_b, &home_b, "Alpha at b", near("Alpha"));
    assert_eq!(alpha["contact"], false);
    assert_eq!(alpha["online"], true);
    until_device(&ns_a, &home_a, "Beta at a", near("Beta"));

    // Hidden (through the running node, at once): a forgets b when its announcements stop,
    // and b, which asks only its contacts while hidden, lists no stranger.
    ok(&ns_b, &home_b, &["devices", "visible", "off"]);
    until(&ns_a, &home_a, "Beta gone from a", |list| {
        list.iter().all(|d| d["nearby"] != true)
    });
    assert!(devices(&ns_b, &home_b).iter().all(|d| d["nearby"] != true));
    // Visible again: found again.
    ok(&ns_b, &home_b, &["devices", "visible", "on"]);
    until_device(&ns_a, &home_a, "Beta at a again", near("Beta"));

    // a sends to "Beta" by name; b accepts; the file arrives whole.
    let data = pseudo_random(300_000, 9);
    let file = tmp.path().join("plan.pdf");
    std::fs::write(&file, &data).unwrap();
    let mut send = ferry_in(&ns_a, &home_a);
    send.args(["send", "--to", "Beta"]).arg(&file);
    let mut sender = Proc::spawn(send);
    let offer = waiting(&ns_b, &home_b);
    assert_eq!(offer["name"], "Alpha");
    assert_eq!(offer["contact"], false);
    let dest = tmp.path().join("in");
    std::fs::create_dir_all(&dest).unwrap();
    let id = offer["id"].to_string();
    ok(
        &ns_b,
        &home_b,
        &["accept", &id, "--out", dest.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(dest.join("plan.pdf")).unwrap(), data);
    sender.wait_stderr(Duration::from_secs(30), |l| l.contains("accepted"));
    drop(sender);

    // A second offer, declined: nothing is written.
    let other = tmp.path().join("other.txt");
    std::fs::write(&other, b"not wanted").unwrap();
    let mut send = ferry_in(&ns_a, &home_a);
    send.args(["send", "--to", "Beta"]).arg(&other);
    let mut sender = Proc::spawn(send);
    let offer = waiting(&ns_b, &home_b);
    ok(&ns_b, &home_b, &["decline", &offer["id"].to_string()]);
    sender.wait_stderr(Duration::from_secs(30), |l| l.contains("declined"));
    drop(sender);
    assert_eq!(list(&dest), vec![std::path::PathBuf::from("plan.pdf")]);

    // Now a contact, online, nearby, reached directly; said so in words too.
    let beta = until_device(&ns_a, &home_a, "Beta as a contact", |d| {
        d["name"] == "Beta" && d["contact"] == true
    });
    assert_eq!(beta["online"], true);
    assert_eq!(beta["via"], "direct");
    let shown = ok(&ns_a, &home_a, &["devices"]);
    assert!(
        shown.contains("Beta\t") && shown.contains("online, direct, nearby"),
        "{shown}"
    );

    // Hidden again, b still finds a: a contact now.
    ok(&ns_b, &home_b, &["devices", "visible", "off"]);
    until_device(&ns_b, &home_b, "Alpha at hidden b", |d| {
        d["name"] == "Alpha" && d["nearby"] == true && d["contact"] == true
    });
}
