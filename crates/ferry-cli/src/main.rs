//! `ferry`: the command-line front end over ferry-core.
//!
//! Every command opens a [`Session`] on the home: it runs the node in this process, or talks to
//! the process that already runs it (another `ferry`, the daemon, or the app).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand};
use ferry_core::{session::Session, NodeConfig, RelayChoice};

mod devices;
mod folder;
mod output;
mod receive;
mod seed;
mod send;
mod signal;

/// jemalloc rather than glibc's allocator: see docs/DESIGN.md, "Memory given back".
#[cfg(all(target_os = "linux", feature = "jemalloc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Send files and folders to another machine, peer to peer, verified end to end.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, propagate_version = true)]
struct Cli {
    /// Data directory (identity, store, control channel). Default: the platform data dir.
    #[arg(long, global = true, env = "FERRY_HOME")]
    home: Option<PathBuf>,
    /// Relay servers: "default" (n0's public relays), "disabled", or a relay URL.
    #[arg(long, global = true, default_value = "default")]
    relay: String,
    /// Local address to bind, e.g. 127.0.0.1:0. Default: all interfaces, random port.
    #[arg(long, global = true)]
    bind: Option<SocketAddr>,
    /// Print progress as JSON lines on stderr instead of progress bars.
    #[arg(long, global = true)]
    json: bool,
    /// Limit what this node uploads, in bytes per second (e.g. 500K, 10M). Applies when this
    /// command starts the node (not to a node already running for this home); without it,
    /// the limit in the home's settings applies.
    #[arg(long, global = true, value_parser = ferry_core::limits::parse_rate)]
    upload_limit: Option<u64>,
    /// Limit what this node uploads to each peer, in bytes per second (e.g. 2M).
    #[arg(long, global = true, value_parser = ferry_core::limits::parse_rate)]
    peer_upload_limit: Option<u64>,
    /// Limit what this node downloads, in bytes per second (e.g. 5M).
    #[arg(long, global = true, value_parser = ferry_core::limits::parse_rate)]
    download_limit: Option<u64>,
    /// Limit what this node downloads from each peer, in bytes per second.
    #[arg(long, global = true, value_parser = ferry_core::limits::parse_rate)]
    peer_download_limit: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Share files or folders; prints the ticket and serves until interrupted.
    #[command(after_help = "Examples:\n  \
        ferry send ~/Pictures/holiday            # prints a ticket; serves until Ctrl-C\n  \
        ferry send report.pdf notes.txt         # several items in one ticket\n  \
        ferry --upload-limit 2M send big.iso     # at most 2 MiB/s\n  \
        ferry send --to \"Office laptop\" report.pdf  # offered to a device, which accepts")]
    Send(send::SendArgs),
    /// Download what a ticket offers.
    #[command(
        visible_alias = "recv",
        after_help = "Examples:\n  \
        ferry receive <ticket>                   # into the current folder\n  \
        ferry receive <ticket> --out ~/Downloads\n  \
        ferry receive <ticket> --seed            # then help later receivers until Ctrl-C\n\n\
        Interrupted? Run the same command again: only what is missing is fetched."
    )]
    Receive(receive::ReceiveArgs),
    /// Synced folders: share, join, list, status.
    #[command(after_help = "Examples:\n  \
        ferry run &                               # keep a node running\n  \
        ferry folder share ~/Projects/band        # prints a folder ticket\n  \
        ferry folder join <folder-ticket> ~/band  # on the other device\n  \
        ferry folder status ~/band\n  \
        ferry folder leave ~/band                 # stop syncing; the files stay")]
    Folder(folder::FolderArgs),
    /// Keep a share available from this machine: fetch it (no files written) and serve it,
    /// with a ticket of its own, until interrupted.
    Seed(seed::SeedArgs),
    /// Run the node headless until interrupted (all shares and folders), so other `ferry`
    /// commands and the app use it.
    #[command(after_help = "Example:\n  \
        ferry run &          # then `ferry send`, `ferry folder ...` and the app use this node\n\n\
        SIGTERM and Ctrl-C stop it cleanly.")]
    Run,
    /// Show the running node of this home: id, addresses, live shares. Starts no node: says
    /// so (exit 1) when none runs.
    #[command(after_help = "Examples:\n  \
        ferry status\n  \
        ferry --json status   # one JSON line")]
    Status,
    /// Show this device's name, or set it (what other devices see).
    #[command(after_help = "Examples:\n  \
        ferry name\n  \
        ferry name \"Office laptop\"")]
    Name {
        /// The new name.
        new: Option<String>,
    },
    /// The devices this one exchanged files with (its contacts) and those on this network.
    #[command(after_help = "Examples:\n  ferry devices\n  ferry devices visible off")]
    Devices {
        #[command(subcommand)]
        change: Option<devices::Change>,
    },
    /// Offers of files from other devices, waiting for an answer (through the running node).
    #[command(
        after_help = "Example:\n  ferry incoming        # then ferry accept ID, or ferry decline ID"
    )]
    Incoming,
    /// Accept an offer and receive it.
    #[command(after_help = "Example:\n  ferry accept 3 --out ~/Downloads")]
    Accept {
        /// The offer's number (see `ferry incoming`).
        id: u32,
        /// Folder to save into. Default: the current directory.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Decline an offer: nothing is fetched.
    #[command(after_help = "Example:\n  ferry decline 3")]
    Decline {
        /// The offer's number (see `ferry incoming`).
        id: u32,
    },
    /// Print a shell completion script, e.g. `ferry completions bash > ~/.local/share/bash-completion/completions/ferry`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

impl Cli {
    fn config(&self) -> anyhow::Result<NodeConfig> {
        let home = match &self.home {
            Some(h) => h.clone(),
            None => ferry_core::default_home()?,
        };
        let relay: RelayChoice = self.relay.parse()?;
        // Each limit given here replaces the one in the settings.
        let settings = ferry_core::settings::Settings::load(&home);
        let mut config = NodeConfig::new(home);
        config.relay = relay;
        config.bind = self.bind;
        config.upload = ferry_core::limits::RateLimits {
            total: self.upload_limit.or(settings.upload.total),
            per_peer: self.peer_upload_limit.or(settings.upload.per_peer),
        };
        config.download = ferry_core::limits::RateLimits {
            total: self.download_limit.or(settings.download.total),
            per_peer: self.peer_download_limit.or(settings.download.per_peer),
        };
        Ok(config)
    }
}

/// Exit codes: 0 done, 1 failed, 2 wrong usage (from the argument parser), 130 interrupted
/// (Ctrl-C) before the work was done.
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // FERRY_LOG, else RUST_LOG, else Ferry's default; colour only on a terminal.
    let filter = ["FERRY_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| tracing_subscriber::EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(ferry_core::DEFAULT_LOG_FILTER));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // With --json every stderr line is JSON: logs too (they carry "level", events "event").
    if cli.json {
        logs.json().init();
    } else {
        logs.init();
    }
    let json = cli.json;
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            let core = e.downcast_ref::<ferry_core::Error>();
            if json {
                let line = serde_json::json!({
                    "event": "error",
                    "code": core.map_or("error", |c| c.code()),
                    "message": format!("{e:#}"),
                });
                eprintln!("{line}");
            } else {
                match core {
                    Some(c) => eprintln!("error: {e:#} [{}]", c.code()),
                    None => eprintln!("error: {e:#}"),
                }
            }
            ExitCode::from(1)
        }
    }
}

/// The exit code of a command interrupted before its work was done.
pub const INTERRUPTED: u8 = 130;

/// Ends a fetch interrupted (Ctrl-C) before it was done: its bar put away, how to resume said
/// (a `cancelled` event with --json), the node stopped; exit 130.
async fn interrupted(
    out: &output::Output,
    bar: Option<indicatif::ProgressBar>,
    session: Session,
) -> anyhow::Result<ExitCode> {
    if let Some(b) = bar {
        b.abandon();
    }
    out.note("cancelled; run the same command again to resume");
    out.event(&serde_json::json!({"event": "cancelled"}));
    session.shutdown().await?;
    Ok(ExitCode::from(INTERRUPTED))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Needs no home (package builds run it without one).
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = cli.config()?;
    // The app may attach to a daemon and change its limits while it runs; a daemon serves
    // what it receives on as its settings say.
    if matches!(cli.command, Command::Run) {
        config.adjustable_limits = true;
        let settings = ferry_core::settings::Settings::load(&config.home);
        config.keep_serving = settings.keep_serving;
        // A daemon finds the devices on its network (never while bound to loopback).
        config.nearby = true;
        config.visible = settings.visible_nearby;
    }
    let out = output::Output::new(cli.json);
    match cli.command {
        Command::Send(args) => send::run(config, args, out).await,
        Command::Receive(args) => receive::run(config, args, out).await,
        Command::Folder(args) => folder::run(config, args, out).await,
        Command::Seed(args) => seed::run(config, args, out).await,
        Command::Name { new } => devices::name(&config, new, &out),
        Command::Devices { change: None } => devices::devices(&config, &out).await,
        Command::Devices {
            change: Some(change),
        } => devices::change(&config, change, &out).await,
        Command::Incoming => devices::incoming(&config, &out).await,
        Command::Accept { id, out: dest } => devices::accept(config, id, dest, out).await,
        Command::Decline { id } => devices::decline(&config, id, &out).await,
        Command::Run => {
            let session = Session::open(config).await?;
            if !session.is_local() {
                anyhow::bail!("a Ferry node already runs on this data directory");
            }
            let status = session.status().await?;
            eprintln!(
                "ferry node {} running; Ctrl-C (or SIGTERM) stops it",
                status.node_id
            );
            crate::signal::stop_requested().await;
            session.shutdown().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            // Asks the running node; starts none.
            let session = Session::attach(&config.home).await?;
            let status = session.status().await?;
            if cli.json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                println!("node\t{}", status.node_id);
                println!("process\t{}", status.pid);
                println!("shares\t{}", status.shares);
                for addr in &status.addrs {
                    println!("address\t{addr}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { .. } => unreachable!("handled before the config"),
    }
}
