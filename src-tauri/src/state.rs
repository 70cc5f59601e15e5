//! What the app holds for its whole life: the node session.

use ferry_core::{session::Session, NodeConfig};

/// Shared app state, managed by Tauri.
pub struct AppState {
    pub session: Session,
}

impl AppState {
    /// Opens the session of the configured home.
    ///
    /// `FERRY_HOME`, `FERRY_RELAY` and `FERRY_BIND` override the defaults, as for the CLI; the
    /// end-to-end tests use them to run the app offline on loopback.
    pub async fn open() -> Result<AppState, ferry_core::Error> {
        let home = match std::env::var_os("FERRY_HOME") {
            Some(h) => h.into(),
            None => ferry_core::default_home()?,
        };
        let mut config = NodeConfig::new(home);
        if let Ok(relay) = std::env::var("FERRY_RELAY") {
            config.relay = relay.parse()?;
        }
        if let Ok(bind) = std::env::var("FERRY_BIND") {
            config.bind = Some(
                bind.parse()
                    .map_err(|e| ferry_core::Error::Config(format!("FERRY_BIND {bind:?}: {e}")))?,
            );
        }
        Ok(AppState {
            session: Session::open(config).await?,
        })
    }
}
