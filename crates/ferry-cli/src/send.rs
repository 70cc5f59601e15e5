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
    /// Offer them to this device (a contact's name, see `ferry devices`, or a node id, with
    /// `@ip:port` for a device found no other way), which accepts or declines; may be given
    /// more than once.
    #[arg(long)]
    to: Vec<String>,
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
    // Offers to devices, answered while the share runs.
    let mut offers = n0_future::FuturesUnordered::new();
    // One listener for the whole transfer: a signal between two events is not missed.
    let stop = crate::signal::stop_requested();
    tokio::pin!(stop);
    let result = loop {
        let item = tokio::select! {
            item = stream.next() => item,
            Some((to, answer)) = n0_future::StreamExt::next(&mut offers), if !offers.is_empty() => {
                match answer {
                    Ok(answer) => {
                        out.event(&serde_json::json!({"event": "offer", "to": to, "answer": answer}));
                        out.note(match answer {
                            ferry_core::offers::Answer::Accepted => format!("{to} accepted; sending"),
                            ferry_core::offers::Answer::Declined => format!("{to} declined"),
                            ferry_core::offers::Answer::Expired => format!("{to} did not answer in time"),
                            ferry_core::offers::Answer::Busy => format!("{to} has too many offers waiting; try later"),
                            ferry_core::offers::Answer::Invalid(why) => format!("{to} refused the offer: {why}"),
                        });
                    }
                    Err(e) => out.note(format!("cannot offer to {to}: {e}")),
                }
                if offers.is_empty() {
                    out.note("still serving the ticket above; Ctrl-C stops");
                }
                continue;
            }
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
                let ticket: ferry_core::Ticket = info.ticket.parse()?;
                let top = info.offer.top_level();
                let title = match top.len() {
                    1 => top[0].clone(),
                    n => format!("{} and {} more", top[0], n - 1),
                };
                for to in &args.to {
                    out.note(format!("offered to {to}; waiting for an answer"));
                    let (session, ticket, title, to) =
                        (&session, ticket.clone(), title.clone(), to.clone());
                    let files = info.offer.file_count() as u64;
                    let size = info.offer.total_size;
                    offers.push(async move {
                        let answer = session.offer_to(&to, &ticket, title, files, size).await;
                        (to, answer)
                    });
                }
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
    // Offers still unanswered end with the share.
    drop(offers);
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
