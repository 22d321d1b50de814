//! Shutdown on SIGINT or SIGTERM.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_requested() {
    let mut interrupt = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let mut terminate = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT received, stopping"),
        _ = terminate.recv() => tracing::info!("SIGTERM received, stopping"),
    }
}
