//! Folder sync between `ferry run` daemons, driven by `ferry folder` commands on the same homes.

use std::{path::Path, time::Duration};

use ferry_e2e::*;

fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// Starts `ferry run` on a home and waits until its node answers.
fn daemon(home: &Path) -> Proc {
    let mut cmd = ferry(home);
    cmd.arg("run");
    let mut p = Proc::spawn(cmd);
    p.wait_stderr(Duration::from_secs(60), |l| l.contains("running"));
    p
}

fn folder(home: &Path, args: &[&str]) -> String {
    let out = ferry(home).arg("folder").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ferry folder {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn two_daemons_sync_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tmp.path().join("home-a"), tmp.path().join("home-b"));
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&dir_a.join("notes.txt"), b"v1");
    write(&dir_b.join("local-only.txt"), b"b had this before joining");
    let mut da = daemon(&home_a);
    let mut db = daemon(&home_b);

    let ticket = folder(&home_a, &["share", dir_a.to_str().unwrap()]);
    let ticket = ticket.trim();
    assert!(
        !ticket.is_empty() && !ticket.contains('\n'),
        "one line: {ticket}"
    );
    // With --json, the folder joined comes back as a JSON line.
    let joined = folder(
        &home_b,
        &["--json", "join", ticket, dir_b.to_str().unwrap()],
    );
    let joined: serde_json::Value = serde_json::from_str(joined.trim()).unwrap();
    assert_eq!(joined["read_only"], false);
    assert_eq!(
        joined["path"].as_str(),
        dir_b.canonicalize().unwrap().to_str()
    );

    eventually("a's file reaches b", || {
        read(&dir_b.join("notes.txt")).as_deref() == Some("v1")
    });
    eventually("b's existing file is merged into a", || {
        read(&dir_a.join("local-only.txt")).as_deref() == Some("b had this before joining")
    });
    write(&dir_b.join("notes.txt"), b"v2 from b");
    eventually("b's edit reaches a", || {
        read(&dir_a.join("notes.txt")).as_deref() == Some("v2 from b")
    });
    std::fs::create_dir_all(dir_a.join("new/dir")).unwrap();
    write(&dir_a.join("new/dir/file.bin"), &pseudo_random(300_000, 5));
    eventually("a new tree reaches b", || {
        std::fs::read(dir_b.join("new/dir/file.bin")).ok() == Some(pseudo_random(300_000, 5))
    });
    // Renames on b, of a file and of a directory, arrive as renames on a.
    std::fs::rename(dir_b.join("notes.txt"), dir_b.join("renamed.txt")).unwrap();
    std::fs::rename(dir_b.join("new"), dir_b.join("moved")).unwrap();
    eventually("b's renames reach a", || {
        read(&dir_a.join("renamed.txt")).as_deref() == Some("v2 from b")
            && !dir_a.join("notes.txt").exists()
            && std::fs::read(dir_a.join("moved/dir/file.bin")).ok()
                == Some(pseudo_random(300_000, 5))
            && !dir_a.join("new/dir/file.bin").exists()
    });
    std::fs::remove_file(dir_a.join("local-only.txt")).unwrap();
    eventually("a deletion reaches b", || {
        !dir_b.join("local-only.txt").exists()
    });

    let list = folder(&home_b, &["list"]);
    assert!(
        list.contains(dir_b.canonicalize().unwrap().to_str().unwrap()),
        "{list}"
    );
    let status = folder(&home_b, &["status", dir_b.to_str().unwrap()]);
    assert!(status.contains("files\t2"), "{status}");
    assert!(
        status.contains("trash\t1"),
        "the deleted file is in b's trash: {status}"
    );
    // Paused through the running daemon: b takes in nothing until resumed, and says so.
    let paused = folder(&home_b, &["--json", "pause", dir_b.to_str().unwrap()]);
    let paused: serde_json::Value = serde_json::from_str(paused.trim()).unwrap();
    assert_eq!(paused["paused"], true);
    let status = folder(&home_b, &["status", dir_b.to_str().unwrap()]);
    assert!(status.contains("state\tpaused"), "{status}");
    assert!(folder(&home_b, &["list"]).contains("\tpaused"));
    write(&dir_a.join("while-paused.txt"), b"later");
    eventually("a takes in its new file", || {
        folder(&home_a, &["status", dir_a.to_str().unwrap()]).contains("files\t3")
    });
    assert!(!dir_b.join("while-paused.txt").exists(), "b is paused");
    folder(&home_b, &["resume", dir_b.to_str().unwrap()]);
    eventually("the file reaches b once resumed", || {
        read(&dir_b.join("while-paused.txt")).as_deref() == Some("later")
    });
    // Idle and healthy, across a reconciliation with the peer (every 10 s): nothing logged at
    // the default level.
    std::thread::sleep(Duration::from_secs(11));
    for (name, d) in [("a", &mut da), ("b", &mut db)] {
        let log = d.stderr();
        let noise: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        assert!(noise.is_empty(), "{name} logged while idle:\n{log}");
    }
}

/// systemd, `kill` and session managers stop a daemon with SIGTERM: it must stop as cleanly as
/// on Ctrl-C (folders save their index), not die in the middle of a write.
#[test]
fn sigterm_stops_the_daemon_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("dir");
    write(&dir.join("notes.txt"), b"kept");
    let mut d = daemon(&home);
    folder(&home, &["share", dir.to_str().unwrap()]);
    eventually("the folder has looked at its files", || {
        folder(&home, &["status", dir.to_str().unwrap()]).contains("up to date")
    });
    let status = d.terminate();
    assert!(
        status.success(),
        "SIGTERM ended the daemon with {status:?}; stderr:\n{}",
        d.stderr()
    );
    assert!(
        dir.join(".ferry/index.json").is_file(),
        "the folder saved its index on the way out"
    );
    assert!(
        !home.join("control.json").exists(),
        "the control file is removed: the next command does not look for a dead node"
    );
}

#[test]
fn a_read_only_member_receives_but_never_sends() {
    let tmp = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tmp.path().join("home-a"), tmp.path().join("home-b"));
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&dir_a.join("doc.txt"), b"original");
    let _da = daemon(&home_a);
    let _db = daemon(&home_b);
    let ticket = folder(&home_a, &["share", "--read-only", dir_a.to_str().unwrap()]);
    folder(&home_b, &["join", ticket.trim(), dir_b.to_str().unwrap()]);
    eventually("the file reaches the read-only member", || {
        read(&dir_b.join("doc.txt")).as_deref() == Some("original")
    });

    write(&dir_b.join("doc.txt"), b"edited by a reader");
    write(&dir_b.join("extra.txt"), b"reader's file");
    // a keeps syncing: a later change of its own still arrives...
    write(&dir_a.join("later.txt"), b"later");
    eventually("a's later change arrives", || {
        read(&dir_b.join("later.txt")).as_deref() == Some("later")
    });
    // ...while nothing of the reader's ever reached a.
    assert_eq!(read(&dir_a.join("doc.txt")).as_deref(), Some("original"));
    assert!(!dir_a.join("extra.txt").exists());
    // An update from a does not destroy the reader's edit: it goes to the trash.
    write(&dir_a.join("doc.txt"), b"new from a");
    eventually("a's update arrives", || {
        read(&dir_b.join("doc.txt")).as_deref() == Some("new from a")
    });
    let status = folder(&home_b, &["status", dir_b.to_str().unwrap()]);
    assert!(
        status.contains("trash\t1"),
        "the reader's edit is in its trash: {status}"
    );
}

#[test]
fn a_peer_that_was_offline_catches_up_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tmp.path().join("home-a"), tmp.path().join("home-b"));
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&dir_a.join("notes.txt"), b"v1");
    let _da = daemon(&home_a);
    let mut db = daemon(&home_b);
    let ticket = folder(&home_a, &["share", dir_a.to_str().unwrap()]);
    folder(&home_b, &["join", ticket.trim(), dir_b.to_str().unwrap()]);
    eventually("first sync", || {
        read(&dir_b.join("notes.txt")).as_deref() == Some("v1")
    });

    // b goes offline; a keeps changing things.
    assert!(db.interrupt().success());
    write(&dir_a.join("notes.txt"), b"v2 while b was away");
    write(&dir_a.join("new.txt"), b"made while b was away");

    // b comes back with the same home: it rejoins the folder by itself and catches up.
    let _db = daemon(&home_b);
    eventually("b catches up", || {
        read(&dir_b.join("notes.txt")).as_deref() == Some("v2 while b was away")
            && read(&dir_b.join("new.txt")).as_deref() == Some("made while b was away")
    });
    // And syncing goes on both ways.
    write(&dir_b.join("reply.txt"), b"back online");
    eventually("b's new file reaches a", || {
        read(&dir_a.join("reply.txt")).as_deref() == Some("back online")
    });
}

#[test]
fn three_peers_one_offline_then_back_all_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let homes: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| tmp.path().join(format!("home-{n}")))
        .collect();
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();
    write(&dirs[0].join("start.txt"), b"from a");
    let _da = daemon(&homes[0]);
    let _db = daemon(&homes[1]);
    let mut dc = daemon(&homes[2]);
    let ticket = folder(&homes[0], &["share", dirs[0].to_str().unwrap()]);
    for i in [1, 2] {
        folder(
            &homes[i],
            &["join", ticket.trim(), dirs[i].to_str().unwrap()],
        );
    }
    eventually("everyone has a's file", || {
        dirs.iter()
            .all(|d| read(&d.join("start.txt")).as_deref() == Some("from a"))
    });
    // c goes offline while a and b keep changing things.
    assert!(dc.interrupt().success());
    write(&dirs[1].join("from-b.txt"), b"b, while c was away");
    write(&dirs[0].join("start.txt"), b"a, edited while c was away");
    eventually("a and b agree", || {
        read(&dirs[0].join("from-b.txt")).as_deref() == Some("b, while c was away")
            && read(&dirs[1].join("start.txt")).as_deref() == Some("a, edited while c was away")
    });
    // c comes back and converges with both.
    let _dc = daemon(&homes[2]);
    eventually("c catches up", || {
        read(&dirs[2].join("from-b.txt")).as_deref() == Some("b, while c was away")
            && read(&dirs[2].join("start.txt")).as_deref() == Some("a, edited while c was away")
    });
    write(&dirs[2].join("from-c.txt"), b"c is back");
    eventually("c's change reaches both", || {
        dirs[..2]
            .iter()
            .all(|d| read(&d.join("from-c.txt")).as_deref() == Some("c is back"))
    });
}

/// A local edit published just before a SIGKILL reaches the other peer after the restart.
/// Regression: the document store commits in batches, so the kill could take the record out
/// of the document while the index already counted the file as published: it was never
/// published again, and the other peer never got the edit.
#[test]
fn an_edit_published_just_before_a_kill_still_reaches_the_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tmp.path().join("home-a"), tmp.path().join("home-b"));
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&dir_a.join("start.txt"), b"start");
    // a keeps its address across the restart, so that b, started again later, finds it (the
    // tests run without any address lookup).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a_daemon = || {
        let mut cmd = ferry_at(&home_a, &format!("127.0.0.1:{port}"));
        cmd.arg("run");
        let mut p = Proc::spawn(cmd);
        p.wait_stderr(Duration::from_secs(60), |l| l.contains("running"));
        p
    };
    let mut da = a_daemon();
    let mut db = daemon(&home_b);
    let ticket = folder(&home_a, &["share", dir_a.to_str().unwrap()]);
    folder(&home_b, &["join", ticket.trim(), dir_b.to_str().unwrap()]);
    eventually("b has a's file", || {
        read(&dir_b.join("start.txt")).as_deref() == Some("start")
    });
    // b is away; a publishes an edit and is killed the moment its index counts it published.
    assert!(db.interrupt().success());
    write(
        &dir_a.join("late.txt"),
        b"written just before the power cut",
    );
    let journal = dir_a.join(".ferry/index.journal");
    eventually("a publishes the new file", || {
        read(&journal).is_some_and(|j| j.contains("late.txt"))
    });
    da.child.kill().unwrap();
    da.child.wait().unwrap();
    let _da = a_daemon();
    let _db = daemon(&home_b);
    eventually("the edit reaches b", || {
        read(&dir_b.join("late.txt")).as_deref() == Some("written just before the power cut")
    });
}

/// The live files of a synced folder and their contents: everything but Ferry's own state and
/// the temporary files of writes cut short.
fn live(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    list(root)
        .into_iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .filter(|p| !p.starts_with(".ferry/") && !p.ends_with(".ferry-tmp"))
        .map(|p| {
            let data = std::fs::read(root.join(&p)).unwrap_or_default();
            (p, data)
        })
        .collect()
}

/// Power cuts on the receiving side: its `ferry run` is killed with SIGKILL again and again
/// while thousands of files and edits arrive. Each restart picks up from what is on disk, and
/// in the end both trees hold every file's last content (nothing torn, nothing lost, no
/// conflict copies of its own writes). Regression: a file written just before the kill was
/// missing from the saved index, or its record from the document (which commits in batches),
/// and after the restart it met the next version of the same file as a conflict.
#[test]
fn a_daemon_killed_repeatedly_while_files_arrive_converges() {
    const FILES: usize = 600;
    const ROUNDS: usize = 4;
    let tmp = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tmp.path().join("home-a"), tmp.path().join("home-b"));
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    let mut da = daemon(&home_a);
    let mut db = daemon(&home_b);
    let ticket = folder(&home_a, &["share", dir_a.to_str().unwrap()]);
    folder(&home_b, &["join", ticket.trim(), dir_b.to_str().unwrap()]);

    // Each round adds FILES new files and rewrites a third of the earlier ones.
    let writer = {
        let dir_a = dir_a.clone();
        std::thread::spawn(move || {
            for round in 0..ROUNDS {
                for i in 0..FILES {
                    let n = round * FILES + i;
                    write(
                        &dir_a.join(format!("d{}/f{n}.txt", n % 16)),
                        format!("file {n}, round {round}").as_bytes(),
                    );
                }
                for n in (0..round * FILES).step_by(3) {
                    write(
                        &dir_a.join(format!("d{}/f{n}.txt", n % 16)),
                        format!("file {n}, edited in round {round}").as_bytes(),
                    );
                }
            }
        })
    };
    let count = |dir: &Path| live(dir).len();
    for kill in 0..ROUNDS {
        // Killed once it has taken in some of what arrives since the last start.
        let before = count(&dir_b);
        eventually(&format!("b receives more before kill {kill}"), || {
            count(&dir_b) > before || (writer.is_finished() && count(&dir_b) >= before)
        });
        db.child.kill().unwrap();
        db.child.wait().unwrap();
        db = daemon(&home_b);
    }
    writer.join().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (ta, tb) = (live(&dir_a), live(&dir_b));
        if ta == tb {
            let extra: Vec<&String> = ta
                .keys()
                .filter(|k| !k.starts_with('d') || k.contains("sync-conflict"))
                .collect();
            assert!(extra.is_empty(), "files no one wrote: {extra:?}");
            assert_eq!(ta.len(), FILES * ROUNDS);
            break;
        }
        if std::time::Instant::now() > deadline {
            let only_a: Vec<_> = ta
                .keys()
                .filter(|k| tb.get(*k) != ta.get(*k))
                .take(5)
                .collect();
            let only_b: Vec<_> = tb
                .keys()
                .filter(|k| ta.get(*k) != tb.get(*k))
                .take(5)
                .collect();
            // What each side says of the folder, and what the daemons said (warnings and
            // errors only, at their default level).
            let status = |home: &Path, dir: &Path| {
                let out = ferry(home)
                    .args(["--json", "folder", "status"])
                    .arg(dir)
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .chars()
                    .take(3000)
                    .collect::<String>()
            };
            let (said_a, said_b) = (da.stderr(), db.stderr());
            let tail = |s: &str| {
                s.lines()
                    .rev()
                    .take(20)
                    .map(String::from)
                    .collect::<Vec<_>>()
            };
            panic!(
                "the trees did not converge: {} vs {} files; differ on a: {only_a:?}, on b: \
                 {only_b:?}\na's status: {}\nb's status: {}\na's daemon said (last lines \
                 first): {:#?}\nb's daemon said: {:#?}",
                ta.len(),
                tb.len(),
                status(&home_a, &dir_a),
                status(&home_b, &dir_b),
                tail(&said_a),
                tail(&said_b),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(db);
}
