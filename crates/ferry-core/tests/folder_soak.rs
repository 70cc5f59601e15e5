//! A bounded randomized soak of folder sync: three read-write peers apply random creates,
//! modifications, deletions and renames (of files and directories), many of them concurrent.
//! At the end all trees are identical, and every content ever written exists somewhere: live,
//! in a trash, or as a conflict copy.
//!
//! The seed is printed; `FERRY_SOAK_SEED=<n>` replays a run, `FERRY_SOAK_OPS=<n>` changes its
//! length.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::*;

/// xorshift64*: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const DIRS: [&str; 4] = ["", "docs/", "docs/old/", "media/"];

fn random_name(rng: &mut Rng) -> String {
    format!("{}f{}.txt", DIRS[rng.below(DIRS.len())], rng.below(12))
}

/// Unique content for operation `op`: mostly small, sometimes a few hundred KiB.
fn content(rng: &mut Rng, seed: u64, op: usize) -> Vec<u8> {
    let mut data = format!("seed {seed} op {op}\n").into_bytes();
    let extra = if rng.below(20) == 0 {
        200_000 + rng.below(300_000)
    } else {
        rng.below(8_000)
    };
    data.extend(pseudo_random(extra, seed ^ op as u64));
    data
}

/// What the peers did to each path in the current round.
#[derive(Default)]
struct Round {
    /// Paths changed on the current peer this round: left alone, so every write is published
    /// before the same peer replaces it (as with a person saving a file).
    touched: BTreeSet<String>,
    /// How many peers replaced, deleted or moved away a path's content this round. At most
    /// two, so a third peer still holds the old content and keeps it in its trash when the
    /// others' changes arrive (a version every holder discarded by hand is not Ferry's to keep).
    discarded: BTreeMap<String, usize>,
}

impl Round {
    fn may_discard(&self, path: &str) -> bool {
        !self.touched.contains(path) && self.discarded.get(path).copied().unwrap_or(0) < 2
    }
    fn discard(&mut self, path: &str) {
        self.touched.insert(path.to_string());
        *self.discarded.entry(path.to_string()).or_default() += 1;
    }
}

/// Applies one random operation at `root`; returns the content it wrote, if any.
fn random_op(
    rng: &mut Rng,
    seed: u64,
    op: usize,
    root: &Path,
    round: &mut Round,
) -> Option<Vec<u8>> {
    let live: Vec<String> = live_tree(root)
        .into_keys()
        .filter(|p| round.may_discard(p))
        .collect();
    let pick = rng.below(100);
    if live.is_empty() || pick < 35 {
        // Create (or overwrite, if the name exists).
        let name = random_name(rng);
        let exists = root.join(&name).exists();
        if round.touched.contains(&name) || (exists && !round.may_discard(&name)) {
            return None;
        }
        let data = content(rng, seed, op);
        write(&root.join(&name), &data);
        if exists {
            round.discard(&name);
        } else {
            round.touched.insert(name);
        }
        return Some(data);
    }
    let existing = live[rng.below(live.len())].clone();
    if pick < 65 {
        let data = content(rng, seed, op);
        std::fs::write(root.join(&existing), &data).unwrap();
        round.discard(&existing);
        Some(data)
    } else if pick < 80 {
        std::fs::remove_file(root.join(&existing)).unwrap();
        round.discard(&existing);
        None
    } else if pick < 95 {
        let to = random_name(rng);
        if round.touched.contains(&to) || root.join(&to).exists() {
            return None;
        }
        let target = root.join(&to);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::rename(root.join(&existing), &target).unwrap();
        round.discard(&existing);
        round.touched.insert(to);
        None
    } else {
        // Rename a whole directory, if nothing in it was touched this round.
        let (from, to) = ("docs/old", format!("docs/old-{op}"));
        let inside = |p: &String| p.starts_with("docs/old/");
        let moved: Vec<String> = live_tree(root).into_keys().filter(inside).collect();
        if !root.join(from).is_dir() || moved.iter().any(|p| !round.may_discard(p)) {
            return None;
        }
        std::fs::rename(root.join(from), root.join(&to)).unwrap();
        for p in moved {
            round
                .touched
                .insert(format!("{to}/{}", &p["docs/old/".len()..]));
            round.discard(&p);
        }
        None
    }
}

async fn wait_converged(dirs: &[PathBuf], what: &str, seed: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let trees: Vec<_> = dirs.iter().map(|d| live_tree(d)).collect();
        let folders: Vec<_> = dirs.iter().map(|d| dirs_tree(d)).collect();
        if trees.windows(2).all(|w| w[0] == w[1]) && folders.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        if Instant::now() > deadline && trees.windows(2).all(|w| w[0] == w[1]) {
            panic!("seed {seed}: directories did not converge {what}: {folders:#?}");
        }
        if Instant::now() > deadline {
            let all: BTreeSet<&String> = trees.iter().flat_map(|t| t.keys()).collect();
            let differ: Vec<String> = all
                .into_iter()
                .filter(|k| !trees.iter().all(|t| t.get(*k) == trees[0].get(*k)))
                .map(|k| {
                    let has: Vec<_> = trees
                        .iter()
                        .map(|t| {
                            t.get(k).map(|v| {
                                String::from_utf8_lossy(&v[..v.len().min(20)]).into_owned()
                            })
                        })
                        .collect();
                    format!("{k}: {has:?}")
                })
                .collect();
            panic!("seed {seed}: peers did not converge {what}: {differ:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_on_three_peers_converge_and_lose_nothing() {
    let seed = std::env::var("FERRY_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let total_ops: usize = std::env::var("FERRY_SOAK_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    println!("folder soak: seed {seed} ({total_ops} operations; FERRY_SOAK_SEED={seed} replays)");
    let mut rng = Rng(seed);

    let env = Env::new();
    let dirs: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| env.dir(n)).collect();
    let a = env.node("a").await;
    let b = env.node("b").await;
    let c = env.node("c").await;
    let ticket = a.folder_share(dirs[0].clone(), false).await.unwrap();
    b.folder_join(&ticket, dirs[1].clone()).await.unwrap();
    c.folder_join(&ticket, dirs[2].clone()).await.unwrap();

    let started = Instant::now();
    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut op = 0;
    let mut round = 0;
    while op < total_ops {
        // Each peer does a few operations at once; the others do theirs concurrently.
        let mut this_round = Round::default();
        for root in &dirs {
            this_round.touched.clear();
            for _ in 0..1 + rng.below(4) {
                if let Some(data) = random_op(&mut rng, seed, op, root, &mut this_round) {
                    written.push(data);
                }
                op += 1;
            }
        }
        round += 1;
        wait_converged(&dirs, &format!("after round {round}"), seed).await;
    }
    println!(
        "folder soak: {op} operations in {round} rounds, {} writes, {:.1} s",
        written.len(),
        started.elapsed().as_secs_f64()
    );

    // Everything written survives somewhere.
    let mut kept: BTreeSet<Vec<u8>> = BTreeSet::new();
    for d in &dirs {
        kept.extend(live_tree(d).into_values());
        kept.extend(trashed_contents(d));
    }
    let lost: Vec<String> = written
        .iter()
        .filter(|w| !kept.contains(*w))
        .map(|w| String::from_utf8_lossy(&w[..w.len().min(40)]).into_owned())
        .collect();
    assert!(lost.is_empty(), "seed {seed}: versions lost: {lost:?}");

    // And the converged trees hold conflict copies only under the documented name.
    let tree: BTreeMap<String, Vec<u8>> = live_tree(&dirs[0]);
    for name in tree.keys().filter(|n| n.contains("sync-conflict")) {
        assert!(
            name.ends_with(".txt") && name.contains(".sync-conflict-"),
            "seed {seed}: odd conflict name {name}"
        );
    }
}
