//! `weir dlq replay`: dead letters sent back to the step that refused them, once the cause is
//! fixed (see `weir::topics::dead_letters`).

use std::process::ExitCode;

use clap::Subcommand;
use weir::topics::dead_letters::{self, ReplayReport, ReplayRequest};

use super::runtime;
use super::topics::Target;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Send a dead-letter topic's letters back through the step that refused them (its first
    /// retry topic, as each letter's `weir-retry-topic` header says). A consumer group
    /// remembers what was sent, so the next replay sends only newer letters.
    Replay {
        #[command(flatten)]
        kafka: Target,
        /// The dead-letter topic.
        topic: String,
        /// The consumer group whose committed offsets mark what was replayed.
        #[arg(long, default_value = dead_letters::DEFAULT_GROUP)]
        group: String,
        /// Send every letter to this topic instead (letters not written by Weir name none).
        #[arg(long, value_name = "TOPIC")]
        to: Option<String>,
        /// At most this many letters; the rest wait for the next replay.
        #[arg(long)]
        limit: Option<u64>,
        /// List what would be sent; send and commit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::Replay {
            kafka,
            topic,
            group,
            to,
            limit,
            dry_run,
            json,
        } => {
            let brokers = kafka.brokers()?;
            let request = ReplayRequest {
                topic,
                group,
                to,
                limit,
                dry_run,
            };
            if !json {
                eprintln!(
                    "reading `{}` from where group `{}` left it...",
                    request.topic, request.group
                );
            }
            let report = runtime()?.block_on(dead_letters::replay(&brokers, &request))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(report: &ReplayReport) {
    let verb = if report.dry_run {
        "would send back"
    } else {
        "sent back"
    };
    for letter in &report.letters {
        println!(
            "partition {} offset {} key {} → {} ({}{})",
            letter.partition,
            letter.offset,
            letter.key.as_deref().unwrap_or("(none)"),
            letter.destination,
            letter
                .step
                .as_deref()
                .map_or(String::new(), |s| format!("step `{s}`")),
            letter
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}")),
        );
    }
    let destinations: Vec<String> = (report.destinations.iter())
        .map(|(topic, count)| format!("{count} to {topic}"))
        .collect();
    println!(
        "{verb} {} dead letters of `{}`{}{}",
        report.replayed,
        report.topic,
        if destinations.is_empty() {
            String::new()
        } else {
            format!(": {}", destinations.join(", "))
        },
        if report.remaining > 0 {
            format!("; {} left for the next replay", report.remaining)
        } else {
            String::new()
        }
    );
    if report.dry_run {
        println!("dry run: nothing sent, nothing committed");
    }
}
