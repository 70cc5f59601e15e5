//! What an idle node does: nothing that wakes its threads for no work. Its own test binary,
//! so that no other test's node shares the process whose threads it counts.

mod common;

use common::*;

/// Voluntary context switches of this process's threads named `name`, summed.
fn wakeups(name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// The documents' actor commits what an action left open 500 ms after the last one; with
/// nothing to commit it woke twice a second anyway, an idle daemon's most frequent wakeup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_node_does_not_wake_its_documents_actor() {
    let env = Env::new();
    let node = env.node("a").await;
    let api = node.docs().api();
    // An action, so that there is something to commit once.
    let doc = api.create().await.unwrap();
    let author = api.author_default().await.unwrap();
    doc.set_bytes(author, b"k".to_vec(), b"v".to_vec())
        .await
        .unwrap();
    // The commit after it.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let before = wakeups("sync-actor");
    assert!(before > 0, "the documents' actor thread is found");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let woken = wakeups("sync-actor") - before;
    assert!(woken <= 1, "woken {woken} times in 3 idle seconds");
}
