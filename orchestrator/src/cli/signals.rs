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

/// What a run's caller hears from the terminal: the first SIGINT or SIGTERM stops the run
/// (it still counts its results and tears down); a second one skips the counting.
pub struct RunInterrupts {
    pub stop: tokio_util::sync::CancellationToken,
    pub skip_results: tokio_util::sync::CancellationToken,
}

/// Tokens for a run, cancelled by the first and second SIGINT/SIGTERM (call inside a tokio
/// runtime).
pub fn run_interrupts() -> RunInterrupts {
    let interrupts = RunInterrupts {
        stop: tokio_util::sync::CancellationToken::new(),
        skip_results: tokio_util::sync::CancellationToken::new(),
    };
    let (stop, skip_results) = (interrupts.stop.clone(), interrupts.skip_results.clone());
    tokio::spawn(async move {
        shutdown_requested().await;
        weir::runtime::progress(
            "interrupted: counting what the run produced, then tearing down (interrupt again to skip the counting)",
        );
        stop.cancel();
        shutdown_requested().await;
        weir::runtime::progress("interrupted again: tearing down without counting");
        skip_results.cancel();
    });
    interrupts
}

/// A token cancelled by the first SIGINT or SIGTERM (call inside a tokio runtime).
pub fn cancelled_on_shutdown() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let on_signal = token.clone();
    tokio::spawn(async move {
        shutdown_requested().await;
        on_signal.cancel();
    });
    token
}
