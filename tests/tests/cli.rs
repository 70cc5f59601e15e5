//! Real `ferry` processes with separate homes, on loopback.

use std::{process::Command, time::Duration};

use ferry_e2e::*;

const LONG: Duration = Duration::from_secs(120);

#[test]
fn two_processes_transfer_a_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src/My Files");
    write(&src.join("a.txt"), b"alpha");
    write(
        &src.join("nested/deeper/b.bin"),
        &pseudo_random(2_000_000, 1),
    );
    write(&src.join("nested/empty.txt"), b"");
    let (mut sender, ticket) = send(&tmp.path().join("home-a"), &[&src]);
    let dest = tmp.path().join("dest");
    let status = ferry(&tmp.path().join("home-b"))
        .args(["receive", &ticket, "--out"])
        .arg(&dest)
        .status()
        .unwrap();
    assert!(status.success());
    assert_trees_equal(&src, &dest.join("My Files"));
    sender.wait_stderr(LONG, |l| l.contains("received everything"));
    assert!(sender.interrupt().success(), "send exits cleanly on Ctrl-C");
}

#[test]
fn receiver_killed_mid_transfer_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let size = 256 * 1024 * 1024;
    write(&src.join("big.bin"), &pseudo_random(size, 2));
    let (_sender, ticket) = send(&tmp.path().join("home-a"), &[&src.join("big.bin")]);
    // A helper holding the whole file: the receiver fetches pieces from both.
    let mut helper = Proc::spawn({
        let mut cmd = ferry(&tmp.path().join("home-helper"));
        cmd.args(["seed", &ticket]);
        cmd
    });
    helper.stdout_line(LONG);
    let home_b = tmp.path().join("home-b");
    let dest = tmp.path().join("dest");

    // Slowed down so that the kill lands mid-transfer, with pieces from both peers on disk.
    let mut first = Proc::spawn({
        let mut cmd = ferry(&home_b);
        cmd.args([
            "--json",
            "--download-limit",
            "64M",
            "receive",
            &ticket,
            "--out",
        ])
        .arg(&dest);
        cmd
    });
    first.wait_stderr(LONG, |l| {
        progress_at_least(l, size as u64 / 10) && peers_with_bytes(l) >= 2
    });
    first.child.kill().unwrap(); // SIGKILL: no chance to clean up
    first.child.wait().unwrap();
    assert!(
        !dest.join("big.bin").exists(),
        "no half-written file in the destination"
    );

    let mut second = json_receive(&home_b, &ticket, &dest);
    let offer = second.wait_stderr(LONG, |l| l.contains("\"event\":\"offer\""));
    let offer: serde_json::Value = serde_json::from_str(&offer).unwrap();
    let kept = offer["local_bytes"].as_u64().unwrap();
    assert!(
        kept > 0,
        "the restarted receiver reuses what it had: {offer}"
    );
    let done = second.wait_stderr(LONG, |l| l.contains("\"event\":\"done\""));
    let done: serde_json::Value = serde_json::from_str(&done).unwrap();
    assert!(second.wait(LONG).success());
    let fetched = done["bytes_fetched"].as_u64().unwrap();
    assert_eq!(
        fetched + kept,
        size as u64,
        "only the missing part was fetched"
    );
    assert_trees_equal(&src, &dest);
}

#[test]
fn two_sends_on_one_home_share_through_one_node() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    write(&tmp.path().join("one.txt"), b"first share");
    write(&tmp.path().join("two.txt"), b"second share");
    let (_first, t1) = send(&home, &[&tmp.path().join("one.txt")]);
    let (mut second, t2) = send(&home, &[&tmp.path().join("two.txt")]);
    assert!(
        second.stderr().contains("already running"),
        "second send used the running node"
    );
    // Both tickets work.
    let home_r = tmp.path().join("home-r");
    for (ticket, name, body) in [
        (&t1, "one.txt", "first share"),
        (&t2, "two.txt", "second share"),
    ] {
        let dest = tmp.path().join(format!("dest-{name}"));
        let st = ferry(&home_r)
            .args(["receive", ticket, "--out"])
            .arg(&dest)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read_to_string(dest.join(name)).unwrap(), body);
    }

    // Interrupting the second send stops only its share. (A fresh receiver: the first one
    // already holds the data and would not need the network.)
    assert!(second.interrupt().success());
    let home_r = tmp.path().join("home-r2");
    let dest = tmp.path().join("dest-again");
    let out = ferry(&home_r)
        .args(["receive", &t2, "--out"])
        .arg(&dest)
        .output()
        .unwrap();
    assert!(!out.status.success(), "stopped share must be refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no longer shares"), "{err}");
    let st = ferry(&home_r)
        .args(["receive", &t1, "--out"])
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success(), "the first share is still served");
}

#[test]
fn invalid_ticket_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["nonsense", "blobxyz", ""] {
        let out = ferry(&tmp.path().join("h"))
            .args(["receive", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ticket"), "{bad:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn help_on_every_command() {
    for args in [
        &["--help"][..],
        &["send", "--help"],
        &["receive", "--help"],
        &["run", "--help"],
        &["seed", "--help"],
        &["status", "--help"],
    ] {
        let out = Command::new(ferry_bin()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = Command::new(ferry_bin()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ferry "));
}

#[test]
fn a_seed_serves_a_share_after_the_sender_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src/album");
    write(&src.join("a.jpg"), &pseudo_random(5_000_000, 7));
    write(&src.join("b.txt"), b"caption");
    let (mut sender, ticket) = send(&tmp.path().join("home-a"), &[&src]);
    let mut seed = Proc::spawn({
        let mut cmd = ferry(&tmp.path().join("home-seed"));
        cmd.args(["seed", &ticket]);
        cmd
    });
    let seed_ticket = seed.stdout_line(LONG);
    assert_ne!(seed_ticket, ticket);
    // The sender closes its laptop.
    assert!(sender.interrupt().success());
    let dest = tmp.path().join("dest");
    let status = ferry(&tmp.path().join("home-b"))
        .args(["receive", &seed_ticket, "--out"])
        .arg(&dest)
        .status()
        .unwrap();
    assert!(status.success());
    assert_trees_equal(&src, &dest.join("album"));
    assert!(seed.interrupt().success(), "seed exits cleanly on Ctrl-C");
}

#[test]
fn receive_seed_serves_later_receivers_until_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let size = 6 << 20;
    write(&src.join("big.bin"), &pseudo_random(size, 9));
    // A slow sender: the second receiver fetches from the first one too.
    let mut cmd = ferry(&tmp.path().join("home-a"));
    cmd.args(["--upload-limit", "2M", "send"])
        .arg(src.join("big.bin"));
    let mut sender = Proc::spawn(cmd);
    let ticket = sender.stdout_line(LONG);

    let mut cmd = ferry(&tmp.path().join("home-b"));
    cmd.args(["--json", "receive", &ticket, "--seed", "--out"])
        .arg(tmp.path().join("dest-b"));
    let mut seeding = Proc::spawn(cmd);
    seeding.wait_stderr(LONG, |l| l.contains("\"event\":\"serving\""));

    let mut late = json_receive(
        &tmp.path().join("home-c"),
        &ticket,
        &tmp.path().join("dest-c"),
    );
    let mut from_peers = 0;
    loop {
        let line = late.wait_stderr(LONG, |l| l.contains("\"event\":"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "progress" {
            for p in v["peers"].as_array().into_iter().flatten() {
                if p["sender"] == false {
                    from_peers = from_peers.max(p["bytes"].as_u64().unwrap());
                }
            }
        }
        if v["event"] == "done" {
            break;
        }
    }
    assert!(late.wait(LONG).success());
    assert!(
        from_peers > 0,
        "the late receiver fetched from the seeding one"
    );
    assert_trees_equal(&src, &tmp.path().join("dest-c"));
    assert!(seeding.interrupt().success(), "Ctrl-C ends seeding cleanly");
    assert_trees_equal(&src, &tmp.path().join("dest-b"));
}

#[test]
fn commands_that_only_ask_a_running_node_say_when_none_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = ferry(&home).arg("status").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no Ferry node is running") && err.contains("[not_running]"),
        "{err}"
    );
    let out = ferry(&home).args(["--json", "status"]).output().unwrap();
    let line = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(v["event"], "error");
    assert_eq!(v["code"], "not_running");
    // Listing folders reads the home's list and says nothing syncs.
    let out = ferry(&home).args(["folder", "list"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not syncing now"));
    assert!(!home.join("docs").exists(), "no node was started to answer");

    // With a node running, status asks it.
    let mut cmd = ferry(&home);
    cmd.arg("run");
    let mut node = Proc::spawn(cmd);
    node.wait_stderr(LONG, |l| l.contains("running"));
    let out = ferry(&home).args(["--json", "status"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"].as_u64(), Some(node.child.id() as u64));
    let out = ferry(&home).arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("node\t"));
    assert!(node.interrupt().success());
}

#[test]
fn an_interrupted_receive_exits_130_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("big.bin"), &pseudo_random(8 << 20, 21));
    let mut cmd = ferry(&tmp.path().join("home-a"));
    cmd.args(["--upload-limit", "1M", "send"])
        .arg(src.join("big.bin"));
    let mut sender = Proc::spawn(cmd);
    let ticket = sender.stdout_line(LONG);
    let mut cmd = ferry(&tmp.path().join("home-b"));
    cmd.env("RUST_LOG", "debug")
        .args(["--json", "receive", &ticket, "--out"])
        .arg(tmp.path().join("dest"));
    let mut receiver = Proc::spawn(cmd);
    receiver.wait_stderr(LONG, |l| progress_at_least(l, 1));
    let status = receiver.interrupt();
    assert_eq!(status.code(), Some(130));
    let err = receiver.stderr();
    assert!(err.contains("\"event\":\"cancelled\""), "{err}");
    assert!(!err.contains("\"event\":\"error\""), "{err}");
    // RUST_LOG is honoured, and logs to a pipe carry no colour codes.
    assert!(err.contains("DEBUG"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[test]
fn wrong_destinations_and_tickets_are_refused_before_anything_is_fetched() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("src/a.txt"), b"a");
    let (_sender, ticket) = send(&tmp.path().join("home-a"), &[&tmp.path().join("src/a.txt")]);
    let file = tmp.path().join("not-a-folder");
    write(&file, b"mine");
    let out = ferry(&tmp.path().join("home-b"))
        .args(["receive", &ticket, "--out"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("it is a file, not a folder"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
    assert!(
        !err.contains("connecting"),
        "refused before connecting: {err}"
    );

    // A ticket cut off when copied, and a ticket given to the wrong command.
    let cut = &ticket[..ticket.len() - 7];
    let out = ferry(&tmp.path().join("home-b"))
        .args(["receive", cut])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("looks cut off") && err.contains("[ticket_cut_off]"),
        "{err}"
    );
    let out = ferry(&tmp.path().join("home-b"))
        .args(["folder", "join", &ticket])
        .arg(tmp.path().join("f"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ferry receive") && err.contains("[ticket_is_send]"),
        "{err}"
    );
    assert!(
        !tmp.path().join("f").exists(),
        "nothing made for a wrong ticket"
    );

    // Received twice into one folder: the second copy gets a new name, and says so.
    let dest = tmp.path().join("dest");
    for _ in 0..2 {
        let out = ferry(&tmp.path().join("home-b"))
            .args(["receive", &ticket, "--out"])
            .arg(&dest)
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if dest.join("a (1).txt").exists() {
            assert!(
                err.contains("a.txt was already there with the same content; this copy is"),
                "{err}"
            );
        }
    }
    assert_eq!(std::fs::read(dest.join("a (1).txt")).unwrap(), b"a");
}

#[test]
fn completions_are_printed_for_a_shell() {
    let out = ferry(&tempfile::tempdir().unwrap().path().join("h"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("complete") && script.contains("receive"),
        "{script}"
    );
    // Every command's help shows how it is used.
    for command in ["send", "receive", "folder", "seed", "run", "status"] {
        let out = std::process::Command::new(ferry_bin())
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Example"), "ferry {command} --help: {help}");
    }
}

#[test]
fn sendme_receives_from_ferry_and_ferry_from_sendme() {
    let ns = NetNs::new("interop");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("payload");
    write(&src.join("x.txt"), b"interop");
    write(&src.join("sub/y.bin"), &pseudo_random(500_000, 3));

    // Ferry sends, sendme receives.
    let mut cmd = ferry(&tmp.path().join("home-a"));
    cmd.arg("send").arg(&src);
    let mut sender = Proc::spawn(ns.wrap(&cmd));
    let ticket = sender.stdout_line(LONG);
    let into = tmp.path().join("by-sendme");
    std::fs::create_dir_all(&into).unwrap();
    let mut recv = Command::new(sendme_bin());
    recv.args(["receive", "--relay", "disabled", "--no-progress", &ticket])
        .current_dir(&into);
    let out = ns.wrap(&recv).output().unwrap();
    assert!(
        out.status.success(),
        "sendme receive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_trees_equal(&src, &into.join("payload"));
    drop(sender);

    // sendme sends, Ferry receives.
    let mut snd = Command::new(sendme_bin());
    snd.args([
        "send",
        "--relay",
        "disabled",
        "--ticket-type",
        "addresses",
        "--no-progress",
    ])
    .args(["--magic-ipv4-addr", "127.0.0.1:0"])
    .arg(&src)
    .current_dir(tmp.path());
    let mut sendme = Proc::spawn(ns.wrap(&snd));
    let ticket = loop {
        let line = sendme.stdout_line(LONG);
        if let Some(t) = line.strip_prefix("sendme receive ") {
            break t.trim().to_string();
        }
    };
    let dest = tmp.path().join("by-ferry");
    let mut cmd = ferry(&tmp.path().join("home-b"));
    cmd.args(["receive", &ticket, "--out"]).arg(&dest);
    let out = ns.wrap(&cmd).output().unwrap();
    assert!(
        out.status.success(),
        "ferry receive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_trees_equal(&src, &dest.join("payload"));
}

#[test]
fn sender_vanishing_mid_transfer_is_clear_and_resumable() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let size = 256 * 1024 * 1024;
    write(&src.join("big.bin"), &pseudo_random(size, 9));
    let home_a = tmp.path().join("home-a");
    let (mut sender, ticket) = send(&home_a, &[&src.join("big.bin")]);
    let home_b = tmp.path().join("home-b");
    let dest = tmp.path().join("dest");

    let mut first = json_receive(&home_b, &ticket, &dest);
    first.wait_stderr(LONG, |l| progress_at_least(l, size as u64 / 10));
    sender.child.kill().unwrap(); // the sender vanishes without a goodbye
    sender.child.wait().unwrap();
    let status = first.wait(LONG);
    assert_eq!(status.code(), Some(1), "the receiver reports the failure");
    let err = first.stderr();
    assert!(err.contains("run again to resume"), "{err}");
    assert!(!dest.join("big.bin").exists());

    // The sender comes back (same home: same node id, same content, same hash).
    let (_sender, ticket2) = send(&home_a, &[&src.join("big.bin")]);
    let mut second = json_receive(&home_b, &ticket2, &dest);
    let offer = second.wait_stderr(LONG, |l| l.contains("\"event\":\"offer\""));
    assert!(offer.contains("\"resumed\":true"), "{offer}");
    assert!(second.wait(LONG).success(), "{}", second.stderr());
    assert_trees_equal(&src, &dest);
}

/// True for a JSON progress line reporting at least `bytes` done.
/// How many peers a progress line says brought bytes.
fn peers_with_bytes(line: &str) -> usize {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return 0;
    };
    v["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["bytes"].as_u64().is_some_and(|b| b > 0))
        .count()
}

fn progress_at_least(line: &str, bytes: u64) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    v["event"] == "progress" && v["done"].as_u64().is_some_and(|d| d >= bytes)
}

#[test]
fn garbage_input_gets_clear_errors_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("h");
    let huge = "x".repeat(100_000);
    let cases: Vec<Vec<String>> = vec![
        vec!["receive".into(), "\u{7f}blob\u{1b}[31m\u{1}".into()],
        vec!["receive".into(), huge.clone()],
        vec!["receive".into(), format!("blob{huge}")],
        vec!["receive".into(), "ferry://receive/".into()],
        vec![
            "send".into(),
            tmp.path().join("does-not-exist").display().to_string(),
        ],
        vec![
            "folder".into(),
            "join".into(),
            "garbage".into(),
            tmp.path().join("f").display().to_string(),
        ],
        vec![
            "folder".into(),
            "join".into(),
            huge.clone(),
            tmp.path().join("f").display().to_string(),
        ],
        vec![
            "folder".into(),
            "status".into(),
            tmp.path().display().to_string(),
        ],
        vec![
            "folder".into(),
            "share".into(),
            tmp.path().join("nope").display().to_string(),
        ],
    ];
    for args in cases {
        let out = ferry(&home).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let shown: String = args.join(" ").chars().take(60).collect();
        assert_eq!(out.status.code(), Some(1), "{shown}: {err}");
        assert!(err.contains("error"), "{shown}: {err}");
        assert!(!err.contains("panicked"), "{shown}: {err}");
        assert!(
            err.len() < 2_000,
            "{shown}: the message stays readable ({} bytes)",
            err.len()
        );
    }
    // Bad global options are refused by the argument parser with its usage error.
    for args in [
        ["--relay", "not a url", "status"],
        ["--bind", "nonsense", "status"],
    ] {
        let out = std::process::Command::new(ferry_bin())
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("error") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

/// `ferry --json receive TICKET --out DEST` on `home`, running.
fn json_receive(home: &std::path::Path, ticket: &str, dest: &std::path::Path) -> Proc {
    let mut cmd = ferry(home);
    cmd.args(["--json", "receive", ticket, "--out"]).arg(dest);
    Proc::spawn(cmd)
}
