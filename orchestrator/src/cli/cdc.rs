//! `weir cdc generate|verify`: change events for a CDC pipeline, and the check that its target
//! holds the final state they leave.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use weir::topics::table::verify;
use weir_topology::source::cdc_generator::{generate, GeneratorConfig};

use super::topics::Target;

#[derive(Debug, Subcommand)]
pub enum CdcCommand {
    /// Write seeded Debezium change events (JSON Lines) of members and the claims that
    /// reference them — generated data, labelled so in every event.
    Generate {
        /// Where to write them (`-` for standard output).
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// The same seed writes the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 100)]
        members: u64,
        /// Change events of claims: inserts, updates and deletes.
        #[arg(long, default_value_t = 1_000)]
        claim_events: u64,
        /// Share of poison records (claims whose row cannot be read), from 0 to 1.
        #[arg(long, default_value_t = 0.0)]
        poison: f64,
        /// Claims inserted before the member they reference.
        #[arg(long, default_value_t = 0)]
        early_references: u64,
    },
    /// Compare a compacted topic with the final state change events leave for one table:
    /// every key, deletes included. Exits 1 naming the keys that differ.
    Verify {
        #[command(flatten)]
        kafka: Target,
        /// The topic holding the latest row per primary key.
        topic: String,
        /// The change events (JSON Lines), as replayed.
        #[arg(long)]
        events: PathBuf,
        /// The table the topic mirrors.
        #[arg(long)]
        table: String,
        /// The tables' primary keys, as for `weir source replay --change-events`.
        #[arg(long, value_name = "TABLE=COLUMN,...")]
        primary_keys: String,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
        /// Compare again every 3 s until the topic matches or this long has passed (e.g.
        /// `2m`), printing each comparison that does not match yet.
        #[arg(long, value_parser = super::parse_duration)]
        wait: Option<Duration>,
        /// Also write the comparison as JSON to this file, at most 10 entries of each list
        /// (how many were left out is said): a Kubernetes Job's termination log. The command
        /// then exits 0 whenever it compared, the verdict being in the report.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

/// The pause between two comparisons of `verify --wait`.
const VERIFY_AGAIN: Duration = Duration::from_secs(3);

pub fn run(command: CdcCommand) -> anyhow::Result<ExitCode> {
    match command {
        CdcCommand::Generate {
            out,
            seed,
            members,
            claim_events,
            poison,
            early_references,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&poison),
                "--poison is a share from 0 to 1, not {poison}"
            );
            let config = GeneratorConfig {
                seed,
                members,
                claim_events,
                poison,
                early_references,
                start_ms: jiff::Timestamp::now().as_millisecond(),
            };
            let events = generate(&config);
            let mut text = events.join("\n");
            text.push('\n');
            if out.as_os_str() == "-" {
                std::io::stdout().write_all(text.as_bytes())?;
            } else {
                std::fs::write(&out, text)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                eprintln!(
                    "wrote {} generated change events to {} (seed {seed})",
                    events.len(),
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CdcCommand::Verify {
            kafka,
            topic,
            events,
            table,
            primary_keys,
            json,
            wait,
            report,
        } => {
            let brokers = kafka.brokers()?;
            let deadline = Instant::now() + wait.unwrap_or_default();
            let comparison = loop {
                let compared = verify(&brokers, &topic, &events, &table, &primary_keys);
                let retry = Instant::now() + VERIFY_AGAIN < deadline;
                match compared {
                    Ok(comparison) if comparison.matches() || !retry => break comparison,
                    Ok(comparison) => eprintln!("not yet: {}", comparison.summary()),
                    Err(error) if error.is_transient() && retry => {
                        eprintln!("Kafka did not answer the comparison ({error}); trying again")
                    }
                    Err(error) => return Err(error.into()),
                }
                std::thread::sleep(VERIFY_AGAIN);
            };
            if let Some(path) = &report {
                let bounded = serde_json::to_string(&comparison.bounded(10))?;
                std::fs::write(path, bounded)
                    .with_context(|| format!("cannot write the report to {}", path.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&comparison)?);
            } else {
                println!("{}", comparison.summary());
                if !comparison.poison.is_empty() {
                    println!(
                        "{} lines of {} are no change event and change no table (first: line {}, {})",
                        comparison.poison_count(),
                        events.display(),
                        comparison.poison[0].line,
                        comparison.poison[0].reason
                    );
                }
            }
            Ok(if comparison.matches() || report.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
