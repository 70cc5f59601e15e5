//! Stopping on request: Ctrl-C (SIGINT) in a terminal, SIGTERM from `kill`, systemd or a
//! session manager. Both end a command the same way: shares stop, folders save their state,
//! the node closes its store, then the process exits. Without this, SIGTERM would kill the
//! process wherever it was, in the middle of a write.

/// Resolves when the process is asked to stop.
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("warning: cannot listen for SIGTERM: {e}");
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.ok();
}
