//! `ferry send`.

use std::{collections::HashMap, path::PathBuf, process::ExitCode};

use clap::Args;
use ferry_core::{session::Session, NodeConfig, ShareEvent};
use indicatif::ProgressBar;

use crate::output::{human, plural, Output};

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Files and folders to share.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub async fn run(config: NodeConfig, args: SendArgs, out: Output) -> anyhow::Result<ExitCode> {
    let session = Session::open(config).await?;
    if !session.is_local() {
        out.note("sharing through the Ferry node already running on this data directory");
    }
    let mut stream = session.share(args.paths).await?;
    let mut import_bar: Option<ProgressBar> = None;
    let mut peers: HashMap<String, ProgressBar> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    // One listener for the whole transfer: a signal between two events is not missed.
    let stop = crate::signal::stop_requested();
    tokio::pin!(stop);
    let result = loop {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = &mut stop => break Ok(()),
        };
        let event = match item {
            Some(Ok(e)) => e,
            Some(Err(e)) => break Err(ferry_core::Error::Remote(e).into()),
            None => break Err(anyhow::anyhow!("the node stopped serving this share")),
        };
        out.event(&event);
        match event {
            ShareEvent::Importing {
                bytes_done,
                bytes_total,
                ..
            } => {
                let bar = import_bar.get_or_insert_with(|| out.bar(bytes_total, "hashing"));
                bar.set_position(bytes_done);
            }
            ShareEvent::Ready(info) => {
                if let Some(bar) = import_bar.take() {
                    bar.finish_and_clear();
                }
                for skipped in &info.skipped {
                    out.note(format!("skipped {skipped}"));
                }
                out.note(format!(
                    "sharing {} ({}, {}); receive with: ferry receive <ticket>",
                    info.offer.top_level().join(", "),
                    plural(info.offer.file_count(), "file"),
                    human(info.offer.total_size)
                ));
                // The ticket alone on stdout, so scripts can take it.
                println!("{}", info.ticket);
            }
            ShareEvent::PeerConnected { peer } => {
                out.note(format!("{} connected", short(&peer)));
            }
            ShareEvent::PeerProgress {
                peer,
                name,
                progress,
            } => {
                if let Some(name) = name {
                    names.insert(peer.clone(), name);
                }
                let label = label(&peer, &names);
                let bar = peers
                    .entry(peer.clone())
                    .or_insert_with(|| out.bar(progress.total, &label));
                bar.set_prefix(label);
                bar.set_position(progress.done);
                if let Some(from_here) = progress.from_here {
                    bar.set_message(format!("{} from here", human(from_here)));
                }
            }
            ShareEvent::PeerDone { peer } => {
                if let Some(bar) = peers.remove(&peer) {
                    bar.finish_and_clear();
                }
                out.note(format!("{} received everything", label(&peer, &names)));
            }
            ShareEvent::PeerDisconnected { peer } => {
                if let Some(bar) = peers.remove(&peer) {
                    bar.abandon();
                }
            }
        }
    };
    drop(stream);
    session.shutdown().await?;
    result?;
    Ok(ExitCode::SUCCESS)
}

fn short(peer: &str) -> String {
    format!("peer {}", &peer[..peer.len().min(10)])
}

/// A peer as people see it: the name it gave (a claim) with its short id, or the short id.
fn label(peer: &str, names: &std::collections::HashMap<String, String>) -> String {
    match names.get(peer) {
        Some(name) => format!("{name} ({})", &peer[..peer.len().min(10)]),
        None => short(peer),
    }
}
