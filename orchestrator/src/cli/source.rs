//! `weir source http|replay`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use weir_topology::source::http::{poll, PollConfig};
use weir_topology::source::replay::{load_recording, replay, ReplayConfig};
use weir_topology::source::Publisher;

use super::{parse_duration, runtime, signals};

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Poll a URL every interval and publish each response body to a topic.
    Http {
        /// The URL to poll (e.g. a public BTC→CNY price endpoint).
        #[arg(long)]
        url: String,
        #[arg(long)]
        topic: String,
        #[arg(long, env = "WEIR_BROKERS")]
        brokers: String,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        interval: Duration,
        /// Time limit of one request.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        timeout: Duration,
        /// Longest wait between retries while the URL fails.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        max_backoff: Duration,
        /// Stop after this many documents.
        #[arg(long)]
        count: Option<u64>,
        /// Message key of every document.
        #[arg(long)]
        key: Option<String>,
    },
    /// Publish recorded documents (JSON Lines, or CSV with a header) at a chosen pace.
    Replay {
        /// The recording.
        file: PathBuf,
        #[arg(long)]
        topic: String,
        #[arg(long, env = "WEIR_BROKERS")]
        brokers: String,
        /// Pause between documents.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
        /// Start over after the last document.
        #[arg(long)]
        repeat: bool,
        #[arg(long)]
        count: Option<u64>,
        #[arg(long)]
        key: Option<String>,
    },
}

pub fn run(command: SourceCommand) -> anyhow::Result<ExitCode> {
    match command {
        SourceCommand::Http {
            url,
            topic,
            brokers,
            interval,
            timeout,
            max_backoff,
            count,
            key,
        } => {
            let config = PollConfig {
                url: url.clone(),
                interval,
                timeout,
                max_backoff,
                max_documents: count,
                key,
            };
            let report = runtime()?.block_on(async {
                let publisher = Publisher::new(&brokers, &topic, ("weir-source", url.clone()))?;
                tracing::info!(%url, %topic, ?interval, "polling live source");
                poll(&config, &publisher, signals::shutdown_requested()).await
            })?;
            println!(
                "published {} documents from {url} to `{topic}` ({} failed attempts{})",
                report.published,
                report.failed_attempts,
                report
                    .last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
            // A source that never delivered anything did not do its job.
            Ok(if report.published == 0 && report.failed_attempts > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        SourceCommand::Replay {
            file,
            topic,
            brokers,
            interval,
            repeat,
            count,
            key,
        } => {
            let documents = load_recording(&file)?;
            let config = ReplayConfig {
                interval,
                repeat,
                max_documents: count,
                key,
            };
            let label = file.display().to_string();
            let published = runtime()?.block_on(async {
                let publisher = Publisher::new(&brokers, &topic, ("weir-replay", label.clone()))?;
                tracing::warn!(
                    recording = %label,
                    documents = documents.len(),
                    "REPLAY: publishing recorded documents, not live data"
                );
                replay(
                    &documents,
                    &config,
                    &publisher,
                    signals::shutdown_requested(),
                )
                .await
            })?;
            println!(
                "replayed {published} recorded documents from {label} to `{topic}` (not live data)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
