//! `weir source http|replay`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weir_contracts::args::{HttpSourceArgs, PublishArgs, ReplaySourceArgs};
use weir_contracts::status::{SourceState, SourceStatus};
use weir_topology::source::http::{poll, PollConfig};
use weir_topology::source::replay::{load_recording, replay, ReplayConfig};
use weir_topology::source::{DocumentKey, Publisher, SourceError};
use weir_topology::status;

use super::{runtime, signals};

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Poll a URL every interval and publish each response body to a topic.
    Http(HttpSourceArgs),
    /// Publish recorded documents (JSON Lines, or CSV with a header) at a chosen pace.
    Replay(ReplaySourceArgs),
}

pub fn run(command: SourceCommand) -> anyhow::Result<ExitCode> {
    match command {
        SourceCommand::Http(args) => {
            let config = PollConfig {
                url: args.url.clone(),
                interval: args.interval,
                timeout: args.timeout,
                max_backoff: args.max_backoff,
                max_documents: args.publish.count,
                key: document_key(&args.publish)?,
            };
            let (status, status_rx) =
                watch::channel(SourceStatus::new(true, &args.url, &args.publish.topic));
            runtime()?.block_on(async {
                let server = serve_status(&args.publish, status_rx).await?;
                let publisher = Publisher::new(
                    &args.publish.brokers,
                    &args.publish.topic,
                    ("weir-source", args.url.clone()),
                )?;
                tracing::info!(url = %args.url, topic = %args.publish.topic, interval = ?args.interval, "polling live source");
                let shutdown = signals::cancelled_on_shutdown();
                let polled = poll(&config, &publisher, &status, shutdown.clone().cancelled_owned()).await;
                ended(&status, polled, server, &shutdown).await
            })?;
            let ended = status.borrow().clone();
            println!(
                "published {} documents from {} to `{}` ({} failed attempts{})",
                ended.published,
                ended.origin,
                ended.topic,
                ended.failed_attempts,
                ended
                    .last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
            // A source that never delivered anything did not do its job.
            Ok(if ended.published == 0 && ended.failed_attempts > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        SourceCommand::Replay(args) => {
            let documents = load_recording(&args.file)?;
            let config = ReplayConfig {
                interval: args.interval,
                repeat: args.repeat,
                max_documents: args.publish.count,
                key: DocumentKey::from_all_args(
                    args.change_events.as_deref(),
                    args.publish.key.as_deref(),
                    args.publish.key_pointer.as_deref(),
                )?,
            };
            let label = args.file.display().to_string();
            let (status, status_rx) =
                watch::channel(SourceStatus::new(false, &label, &args.publish.topic));
            runtime()?.block_on(async {
                let server = serve_status(&args.publish, status_rx).await?;
                let publisher = Publisher::new(
                    &args.publish.brokers,
                    &args.publish.topic,
                    ("weir-replay", label.clone()),
                )?;
                tracing::warn!(
                    recording = %label,
                    documents = documents.len(),
                    "REPLAY: publishing recorded documents, not live data"
                );
                let shutdown = signals::cancelled_on_shutdown();
                let replayed = replay(
                    &documents,
                    &config,
                    &publisher,
                    &status,
                    shutdown.clone().cancelled_owned(),
                )
                .await;
                ended(&status, replayed, server, &shutdown).await
            })?;
            println!(
                "replayed {} recorded documents from {label} to `{}` (not live data)",
                status.borrow().published,
                args.publish.topic
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Serves the source's `/status` when `--addr` is given.
async fn serve_status(
    publish: &PublishArgs,
    status: watch::Receiver<SourceStatus>,
) -> anyhow::Result<Option<status::Server>> {
    let Some(addr) = publish.addr else {
        return Ok(None);
    };
    let server = status::Server::start(addr, status::route(status))
        .await
        .with_context(|| format!("cannot listen on {addr} for the source's status"))?;
    // Printed on stdout so that a supervisor can find a port chosen with :0.
    println!("status: http://{}/status", server.addr);
    Ok(Some(server))
}

/// Records how the source ended and stops serving its status.
async fn ended(
    status: &watch::Sender<SourceStatus>,
    result: Result<(), SourceError>,
    server: Option<status::Server>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    if let Err(error) = &result {
        status.send_modify(|s| {
            s.state = SourceState::Failed;
            s.last_error = Some(error.to_string());
        });
    }
    if let Some(server) = server {
        // A source that finished its work as a service stays to say what it published, until
        // it is stopped; one that failed exits (non-zero) so that its death is seen at once.
        if result.is_ok() && !shutdown.is_cancelled() {
            tracing::info!("finished; serving the final status until stopped");
            shutdown.cancelled().await;
        }
        server.stop().await;
    }
    Ok(result?)
}

/// How `--key` or `--key-pointer` key each document.
fn document_key(publish: &PublishArgs) -> anyhow::Result<DocumentKey> {
    Ok(DocumentKey::from_args(
        publish.key.as_deref(),
        publish.key_pointer.as_deref(),
    )?)
}
