//! `ferry name`, `ferry devices`, `ferry incoming`, `ferry accept`, `ferry decline`: this
//! device's name, the devices it knows, and the offers of files waiting for an answer.

use std::{path::PathBuf, process::ExitCode};

use ferry_core::{session::Session, settings::Settings, NodeConfig};

use crate::output::{human, plural, Output};

/// `ferry name [NEW]`: shows or sets this device's name (no node needed).
pub fn name(config: &NodeConfig, new: Option<String>, out: &Output) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(&config.home);
    if let Some(new) = new {
        settings.device_name = new.trim().to_string();
        // A home not used yet is made for it.
        std::fs::create_dir_all(&config.home).map_err(|e| ferry_core::Error::Home {
            path: config.home.clone(),
            reason: e.to_string(),
        })?;
        settings.save(&config.home)?;
        out.note("other devices see the new name from their next exchange with this one");
    }
    if out.is_json() {
        println!("{}", serde_json::json!({ "name": settings.device_name }));
    } else {
        println!("{}", settings.device_name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Changes to a contact (`ferry devices rename|forget|auto-accept`).
#[derive(Debug, clap::Subcommand)]
pub enum Change {
    /// Call a device by a name of yours (shown instead of its own).
    #[command(after_help = "Example:\n  ferry devices rename 3f2a9c01d2 \"Anna's phone\"")]
    Rename {
        /// The device: its name or node id (see `ferry devices`).
        device: String,
        /// The name; leave it out to show the device's own name again.
        name: Option<String>,
    },
    /// Forget a device: it is a stranger again (its offers wait for you).
    Forget {
        /// The device: its name or node id.
        device: String,
    },
    /// Accept this device's offers without asking, into FOLDER; `--off` asks again.
    #[command(
        after_help = "Examples:\n  ferry devices auto-accept \"Office laptop\" ~/Inbox\n  ferry devices auto-accept \"Office laptop\" --off"
    )]
    AutoAccept {
        /// The device: its name or node id.
        device: String,
        /// Where its files go.
        #[arg(required_unless_present = "off")]
        folder: Option<PathBuf>,
        /// Ask again for its offers.
        #[arg(long, conflicts_with = "folder")]
        off: bool,
    },
}

/// `ferry devices rename|forget|auto-accept`: through the running node, else on the home.
pub async fn change(config: &NodeConfig, change: Change, out: &Output) -> anyhow::Result<ExitCode> {
    use ferry_core::contacts::ContactChange;
    let (device, change) = match change {
        Change::Rename { device, name } => (device, ContactChange::Rename(name)),
        Change::Forget { device } => (device, ContactChange::Forget),
        Change::AutoAccept {
            device,
            folder,
            off,
        } => {
            let dir = match (folder, off) {
                (Some(d), false) => Some(std::path::absolute(d)?),
                _ => None,
            };
            (device, ContactChange::AutoAccept(dir))
        }
    };
    let changed = match Session::attach(&config.home).await {
        Ok(session) => session.change_contact(&device, change).await?,
        Err(ferry_core::Error::NotRunning { .. }) => {
            ferry_core::contacts::Contacts::load(&config.home).apply(&device, change)?
        }
        Err(e) => return Err(e.into()),
    };
    if out.is_json() {
        println!("{}", serde_json::to_string(&changed)?);
    } else {
        out.note(format!("{} ({})", changed.shown_name(), changed.id));
    }
    Ok(ExitCode::SUCCESS)
}

/// `ferry devices`: the contacts, through the running node or from the home.
pub async fn devices(config: &NodeConfig, out: &Output) -> anyhow::Result<ExitCode> {
    let contacts = match Session::attach(&config.home).await {
        Ok(session) => session.contacts().await?,
        Err(ferry_core::Error::NotRunning { .. }) => {
            ferry_core::contacts::Contacts::load(&config.home).list()
        }
        Err(e) => return Err(e.into()),
    };
    if contacts.is_empty() {
        out.note(
            "no devices yet: a device you send to or receive from by `ferry send --to` becomes one",
        );
    }
    for c in contacts {
        if out.is_json() {
            println!("{}", serde_json::to_string(&c)?);
        } else {
            println!(
                "{}\t{}\t{}",
                c.shown_name(),
                c.id,
                c.auto_accept
                    .as_ref()
                    .map(|d| format!("accepts into {}", d.display()))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Offers arrive only at a running node.
async fn running(config: &NodeConfig) -> anyhow::Result<Session> {
    Ok(Session::attach(&config.home).await?)
}

/// `ferry incoming`: the offers waiting for an answer.
pub async fn incoming(config: &NodeConfig, out: &Output) -> anyhow::Result<ExitCode> {
    let session = running(config).await?;
    let offers = session.incoming_offers().await?;
    if offers.is_empty() {
        out.note("no offers are waiting");
    }
    for o in offers {
        if out.is_json() {
            println!("{}", serde_json::to_string(&o)?);
        } else {
            println!(
                "{}\t{} ({})\t{}\t{}, {}{}",
                o.id,
                o.name,
                &o.from[..o.from.len().min(10)],
                o.title,
                plural(o.files as usize, "file"),
                human(o.size),
                if o.contact { "" } else { "\tnot a contact" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ferry decline ID`.
pub async fn decline(config: &NodeConfig, id: u32, out: &Output) -> anyhow::Result<ExitCode> {
    let session = running(config).await?;
    let offer = session.answer_offer(id, false).await?;
    out.note(format!("declined {:?} from {}", offer.title, offer.name));
    Ok(ExitCode::SUCCESS)
}

/// `ferry accept ID [--out DIR]`: accepts, then receives it as `ferry receive` does.
pub async fn accept(
    config: NodeConfig,
    id: u32,
    dest: Option<PathBuf>,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let session = running(&config).await?;
    let Some(waiting) = session
        .incoming_offers()
        .await?
        .into_iter()
        .find(|o| o.id == id)
    else {
        anyhow::bail!("no offer {id} is waiting (see `ferry incoming`)");
    };
    // What the offer claimed, checked against what its ticket holds before saying yes.
    let ticket: ferry_core::Ticket = waiting.ticket.parse().map_err(ferry_core::Error::from)?;
    let real = session.preview(&ticket).await?;
    if real.file_count() as u64 > waiting.files || real.total_size > waiting.size {
        session.answer_offer(id, false).await?;
        anyhow::bail!(
            "the offer said {} ({}) but holds {} ({}): declined",
            plural(waiting.files as usize, "file"),
            human(waiting.size),
            plural(real.file_count(), "file"),
            human(real.total_size)
        );
    }
    let offer = session.answer_offer(id, true).await?;
    drop(session);
    out.note(format!("accepted {:?} from {}", offer.title, offer.name));
    let ticket = offer.ticket.clone();
    let json = out.is_json();
    let result = crate::receive::fetch(config, offer.ticket, dest, false, out).await;
    if result.is_err() && !json {
        eprintln!("to try again: ferry receive {ticket}");
    }
    result
}
