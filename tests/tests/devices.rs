//! Sending to a device between `ferry run` daemons: offers accepted and declined through the
//! CLI, and devices known by name afterwards.

use std::{path::Path, time::Duration};

use ferry_e2e::*;

fn daemon(home: &Path) -> Proc {
    let mut cmd = ferry(home);
    cmd.arg("run");
    let mut p = Proc::spawn(cmd);
    p.wait_stderr(Duration::from_secs(60), |l| l.contains("running"));
    p
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = ferry(home).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The first offer waiting at `home`, as JSON, within 30 s.
fn waiting(home: &Path) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = ok(home, &["--json", "incoming"]);
        if let Some(line) = out.lines().next() {
            return serde_json::from_str(line).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no offer arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_device_accepts_an_offer_and_declines_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&home_a, &["name", "Alice laptop"]);
    ok(&home_b, &["name", "Bob desktop"]);
    assert_eq!(ok(&home_b, &["name"]).trim(), "Bob desktop");
    let _db = daemon(&home_b);
    let status: serde_json::Value =
        serde_json::from_str(ok(&home_b, &["--json", "status"]).trim()).unwrap();
    let b = format!(
        "{}@{}",
        status["node_id"].as_str().unwrap(),
        status["addrs"][0].as_str().unwrap()
    );
    let data = pseudo_random(200_000, 4);
    let file = tmp.path().join("report.pdf");
    std::fs::write(&file, &data).unwrap();

    let mut send = ferry(&home_a);
    send.args(["send", "--to", &b]).arg(&file);
    let mut sender = Proc::spawn(send);
    let offer = waiting(&home_b);
    assert_eq!(offer["name"], "Alice laptop");
    assert_eq!(offer["title"], "report.pdf");
    assert_eq!(offer["contact"], false);
    let dest = tmp.path().join("in");
    std::fs::create_dir_all(&dest).unwrap();
    let id = offer["id"].to_string();
    ok(&home_b, &["accept", &id, "--out", dest.to_str().unwrap()]);
    assert_eq!(std::fs::read(dest.join("report.pdf")).unwrap(), data);
    sender.wait_stderr(Duration::from_secs(30), |l| l.contains("accepted"));
    drop(sender);
    // b knows a by name now.
    let devices = ok(&home_b, &["devices"]);
    assert!(devices.contains("Alice laptop"), "{devices}");

    // A second offer, declined: the sender hears it and nothing is written.
    let other = tmp.path().join("other.txt");
    std::fs::write(&other, b"not wanted").unwrap();
    let mut send = ferry(&home_a);
    send.args(["send", "--to", &b]).arg(&other);
    let mut sender = Proc::spawn(send);
    let offer = waiting(&home_b);
    assert_eq!(offer["contact"], true);
    ok(&home_b, &["decline", &offer["id"].to_string()]);
    sender.wait_stderr(Duration::from_secs(30), |l| l.contains("declined"));
    assert!(!dest.join("other.txt").exists());
    assert!(ok(&home_b, &["incoming"]).trim().is_empty());
    drop(sender);

    // Named as b likes, and trusted: its next offer arrives unattended in the inbox.
    let a_id = offer["from"].as_str().unwrap().to_string();
    ok(&home_b, &["devices", "rename", &a_id, "Mum"]);
    assert!(ok(&home_b, &["devices"]).contains("Mum"));
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    ok(
        &home_b,
        &["devices", "auto-accept", "Mum", inbox.to_str().unwrap()],
    );
    let recipe = tmp.path().join("recipe.txt");
    std::fs::write(&recipe, b"flour, eggs").unwrap();
    let mut send = ferry(&home_a);
    send.args(["send", "--to", &b]).arg(&recipe);
    let mut sender = Proc::spawn(send);
    sender.wait_stderr(Duration::from_secs(30), |l| l.contains("accepted"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read(inbox.join("recipe.txt")).ok().as_deref() != Some(b"flour, eggs") {
        assert!(
            std::time::Instant::now() < deadline,
            "the trusted offer never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(sender);
    // Without a node, offers cannot be looked at: it says so.
    let out = ferry(&home_a).arg("incoming").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Ferry node is running"));
}
