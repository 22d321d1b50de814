//! `weir topics create|count|wait`: the data-path steps of a workflow as commands of their
//! own, so that they can run next to Kafka (as Kubernetes Jobs) when the orchestrator has no
//! network path to the brokers. Each prints its result as JSON and, with `--report FILE`,
//! also writes it there — Jobs use `/dev/termination-log`, which Kubernetes returns in the
//! pod's status without any log or network access.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{parse_duration, runtime};
use weir::runtime::topics::wait_for_messages;
use weir::runtime::CreatedTopics;

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create topics (existing ones are left as they are).
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Print how many messages each topic holds.
    Count {
        #[command(flatten)]
        common: Common,
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Wait until a topic holds at least `--messages` messages; exit 1 when `--timeout` passes.
    Wait {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        messages: i64,
        #[arg(long, default_value = "2m", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Debug, Args)]
pub struct Common {
    /// Kafka bootstrap servers.
    #[arg(long, env = "WEIR_BROKERS")]
    brokers: String,
    /// Also write the JSON result to this file (a Job's `/dev/termination-log`).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn run(command: TopicsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TopicsCommand::Create {
            common,
            partitions,
            topics,
        } => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            runtime()?
                .block_on(weir_topology::kafka::ensure_topics(
                    &common.brokers,
                    &names,
                    partitions,
                ))
                .with_context(|| format!("creating topics on {}", common.brokers))?;
            report(
                &common,
                &serde_json::to_value(CreatedTopics { created: topics })?,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        TopicsCommand::Count { common, topics } => {
            let counts = weir_topology::kafka::count_messages(&common.brokers, &topics)
                .map_err(|e| anyhow::anyhow!("counting messages on {}: {e}", common.brokers))?;
            report(&common, &serde_json::to_value(&counts)?)?;
            if !counts.missing.is_empty() {
                eprintln!(
                    "{} has no topic {}",
                    common.brokers,
                    counts.missing.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TopicsCommand::Wait {
            common,
            topic,
            messages,
            timeout,
        } => {
            let never = tokio_util::sync::CancellationToken::new();
            let waited = runtime()?.block_on(wait_for_messages(
                &common.brokers,
                &topic,
                messages,
                timeout,
                &never,
                |now| eprintln!("{}", now.held()),
            ))?;
            report(&common, &serde_json::to_value(&waited)?)?;
            Ok(if waited.reached {
                ExitCode::SUCCESS
            } else {
                eprintln!("{} after {timeout:?}", waited.held());
                ExitCode::FAILURE
            })
        }
    }
}

fn report(common: &Common, result: &serde_json::Value) -> anyhow::Result<()> {
    let text = result.to_string();
    println!("{text}");
    if let Some(path) = &common.report {
        write_report(path, &text)?;
    }
    Ok(())
}

fn write_report(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing the report to {}", path.display()))
}
