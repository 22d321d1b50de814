//! `weir topics`: what flows through a Kafka — `list` (topics, consumer groups and their lag),
//! `browse` (messages read back, filtered), `tail` (followed live), `produce` (a message by
//! hand) — and the data-path steps of a workflow, `create|count|wait`, which Kubernetes Jobs
//! run next to the brokers. Jobs pass `--report /dev/termination-log`: Kubernetes returns
//! that file in the pod's status without any log or network access.
//!
//! The Kafka is named by `--brokers`, by a Kafka instance (`--kafka NAME`) or by a run
//! (`--run ID`); a name that is not an address fails at once.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::backend::BackendArgs;
use super::{parse_duration, runtime};
use weir::runtime::topics::wait_for_messages;
use weir::runtime::CreatedTopics;
use weir::topics::browse::{self, BrowseRequest, Browsed, Filter, Message, Start};
use weir::topics::overview::{self, ClusterOverview};
use weir::topics::produce::{self, NewMessage};
use weir::topics::KafkaTarget;

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List topics (partitions, replicas, messages) and consumer groups with their lag.
    List {
        #[command(flatten)]
        kafka: Target,
        /// Also list Kafka's internal topics (`__consumer_offsets`…).
        #[arg(long)]
        internal: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Only these topics (all when none is named).
        topics: Vec<String>,
    },
    /// Read a topic's messages: the newest (default), or forward from an offset or a time.
    Browse {
        #[command(flatten)]
        kafka: Target,
        topic: String,
        #[command(flatten)]
        read: ReadArgs,
        /// Start at this offset of each partition read, and read forward.
        #[arg(long, conflicts_with = "since")]
        offset: Option<i64>,
        /// Start at the first message at or after this time, and read forward: RFC 3339
        /// (`2026-12-06T09:00:00Z`), epoch milliseconds, or a duration ago (`10m`).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Messages to show at most.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
        /// Messages to scan at most over all partitions: a filtered browse of a big topic
        /// stops there and says so.
        #[arg(long, default_value_t = browse::DEFAULT_SCAN_LIMIT)]
        scan_limit: u64,
        /// Print one JSON object (messages with their values as JSON, text or hex).
        #[arg(long)]
        json: bool,
    },
    /// Follow a topic from its end, printing each new message; Ctrl-C stops.
    Tail {
        #[command(flatten)]
        kafka: Target,
        topic: String,
        #[command(flatten)]
        read: ReadArgs,
        /// Stop after this many messages.
        #[arg(long)]
        max: Option<u64>,
        /// Stop after this long (e.g. `30s`).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Print each message as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Write messages into an existing topic: VALUE, or each line of standard input.
    Produce {
        #[command(flatten)]
        kafka: Target,
        topic: String,
        /// The message (each line of standard input is one message when not given).
        value: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// A header, `NAME=VALUE` (repeat for more).
        #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        #[arg(long)]
        partition: Option<i32>,
        /// Print where each message landed as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Create topics (existing ones are left as they are).
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Print how many messages each topic holds; a topic that does not exist fails the
    /// command unless `--missing-ok` (it is then listed under `missing`, never counted as 0).
    Count {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        missing_ok: bool,
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

/// Which Kafka: one of the three.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub(super) struct Target {
    /// Kafka bootstrap servers, `host:port[,host:port…]`.
    #[arg(long, env = "WEIR_BROKERS")]
    brokers: Option<String>,
    /// A Kafka instance, by its name in `weir instances`.
    #[arg(long, value_name = "NAME")]
    kafka: Option<String>,
    /// The Kafka instance of a running run, by its id in `weir runs`.
    #[arg(long, value_name = "ID")]
    run: Option<String>,
}

impl Target {
    /// The bootstrap servers, checked to resolve.
    pub(super) fn brokers(&self) -> anyhow::Result<String> {
        // Jobs in pods pass addresses and have no Weir home: a good address needs nothing more.
        if let Some(brokers) = &self.brokers {
            if weir::topics::address::check_bootstrap(brokers).is_ok() {
                return Ok(brokers.clone());
            }
        }
        let target = match (&self.brokers, &self.kafka, &self.run) {
            (Some(brokers), _, _) => KafkaTarget::Brokers(brokers.clone()),
            (_, Some(name), _) => KafkaTarget::Instance(name.clone()),
            (_, _, Some(run)) => KafkaTarget::Run(run.clone()),
            _ => anyhow::bail!("name the Kafka: --brokers HOST:PORT, --kafka NAME or --run ID"),
        };
        let config = BackendArgs::default().config()?;
        Ok(runtime()?.block_on(target.resolve(&config))?)
    }
}

/// Which messages `browse` and `tail` read and keep.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Only this partition (all when not given).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Only messages with exactly this key.
    #[arg(long)]
    key: Option<String>,
    /// Only messages whose key or value contains this text.
    #[arg(long, value_name = "TEXT")]
    contains: Option<String>,
    /// Only messages for which this CEL expression is true, over the value's fields, `value`,
    /// `key` and `timestamp` (e.g. `rate > 7000.0`).
    #[arg(long = "where", value_name = "EXPRESSION")]
    expression: Option<String>,
}

impl ReadArgs {
    fn filter(&self) -> anyhow::Result<Filter> {
        let expression = match &self.expression {
            Some(text) => Some(weir_topology::expression::Expression::compile(text)?),
            None => None,
        };
        Ok(Filter {
            key: self.key.clone(),
            contains: self.contains.clone(),
            expression,
        })
    }
}

/// The options of the workflow steps' commands.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    kafka: Target,
    /// Also write the JSON result to this file (a Job's `/dev/termination-log`).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn run(command: TopicsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TopicsCommand::List {
            kafka,
            internal,
            json,
            topics,
        } => {
            let brokers = kafka.brokers()?;
            let found = overview::overview(&brokers, &topics, internal)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                print_overview(&found);
            }
            Ok(ExitCode::SUCCESS)
        }
        TopicsCommand::Browse {
            kafka,
            topic,
            read,
            offset,
            since,
            limit,
            scan_limit,
            json,
        } => {
            let start = match (offset, since) {
                (Some(offset), _) => Start::Offset(offset),
                (_, Some(since)) => Start::Timestamp(browse::parse_time(&since)?),
                _ => Start::Newest,
            };
            let request = BrowseRequest {
                topic,
                partition: read.partition,
                start,
                limit,
                filter: read.filter()?,
                scan_limit,
            };
            let brokers = kafka.brokers()?;
            let browsed = browse::browse(&brokers, &request)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&browsed)?);
            } else {
                print_browsed(&browsed);
            }
            Ok(if browsed.timed_out {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        TopicsCommand::Tail {
            kafka,
            topic,
            read,
            max,
            duration,
            json,
        } => {
            let filter = read.filter()?;
            let brokers = kafka.brokers()?;
            let interrupted = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, interrupted.clone())?;
            }
            let until = duration.map(|d| std::time::Instant::now() + d);
            let stop = || {
                interrupted.load(Ordering::Relaxed)
                    || until.is_some_and(|u| std::time::Instant::now() >= u)
            };
            let mut shown = 0u64;
            let tailed = browse::tail(
                &brokers,
                &topic,
                read.partition,
                &filter,
                &stop,
                &mut || eprintln!("following `{topic}` on {brokers} (Ctrl-C stops)"),
                &mut |message| {
                    if json {
                        println!("{}", serde_json::to_string(&message).unwrap_or_default());
                    } else {
                        println!("{}", message_line(&message));
                    }
                    shown += 1;
                    max.is_none_or(|max| shown < max)
                },
            )?;
            if tailed.filter_errors > 0 {
                eprintln!(
                    "{} messages could not be tested by --where (a field they lack) and were not shown",
                    tailed.filter_errors
                );
            }
            Ok(if interrupted.load(Ordering::Relaxed) {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            })
        }
        TopicsCommand::Produce {
            kafka,
            topic,
            value,
            key,
            headers,
            partition,
            json,
        } => {
            let values = match value {
                Some(value) => vec![value],
                None => std::io::stdin()
                    .lock()
                    .lines()
                    .collect::<Result<Vec<_>, _>>()
                    .context("reading messages from standard input")?,
            };
            let messages: Vec<NewMessage> = (values.into_iter())
                .map(|value| NewMessage {
                    key: key.clone(),
                    value,
                    headers: headers.clone(),
                    partition,
                })
                .collect();
            let brokers = kafka.brokers()?;
            let produced = runtime()?.block_on(produce::produce(&brokers, &topic, &messages))?;
            for landed in &produced {
                if json {
                    println!("{}", serde_json::to_string(landed)?);
                } else {
                    println!(
                        "wrote {}[{}]@{}",
                        landed.topic, landed.partition, landed.offset
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TopicsCommand::Create {
            common,
            partitions,
            topics,
        } => {
            let brokers = common.kafka.brokers()?;
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            runtime()?
                .block_on(weir_topology::kafka::ensure_topics(
                    &brokers, &names, partitions,
                ))
                .with_context(|| format!("creating topics on {brokers}"))?;
            report(
                &common,
                &serde_json::to_value(CreatedTopics { created: topics })?,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        TopicsCommand::Count {
            common,
            missing_ok,
            topics,
        } => {
            let brokers = common.kafka.brokers()?;
            let counts = weir_topology::kafka::count_messages(&brokers, &topics)
                .map_err(|e| anyhow::anyhow!("counting messages on {brokers}: {e}"))?;
            report(&common, &serde_json::to_value(&counts)?)?;
            if counts.missing.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("{brokers} has no topic {}", counts.missing.join(", "));
            Ok(if missing_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        TopicsCommand::Wait {
            common,
            topic,
            messages,
            timeout,
        } => {
            let brokers = common.kafka.brokers()?;
            let never = tokio_util::sync::CancellationToken::new();
            let waited = runtime()?.block_on(wait_for_messages(
                &brokers,
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

/// A `--header` that is not `NAME=VALUE` with a name.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not NAME=VALUE (e.g. --header trace-id=abc123)")]
struct NotAHeader(String);

fn parse_header(text: &str) -> Result<(String, String), NotAHeader> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(NotAHeader(text.to_string())),
    }
}

fn print_overview(found: &ClusterOverview) {
    let brokers: Vec<String> = (found.brokers.iter())
        .map(|b| format!("{}:{} (id {})", b.host, b.port, b.id))
        .collect();
    println!("brokers: {}", brokers.join(", "));
    println!();
    println!(
        "{:<40} {:>10} {:>8} {:>12}",
        "TOPIC", "PARTITIONS", "REPLICAS", "MESSAGES"
    );
    for topic in &found.topics {
        println!(
            "{:<40} {:>10} {:>8} {:>12}",
            topic.name,
            topic.partitions.len(),
            topic.replication,
            topic.messages
        );
    }
    if found.topics.is_empty() {
        println!("(no topics)");
    }
    println!();
    println!(
        "{:<40} {:<20} {:>7} {:>10} {:>10}",
        "CONSUMER GROUP", "STATE", "MEMBERS", "LAG", "LAG (TIME)"
    );
    for group in &found.groups {
        println!(
            "{:<40} {:<20} {:>7} {:>10} {:>10}",
            group.group,
            group.state,
            group.members,
            group.lag,
            seconds(group.lag_seconds, group.lag)
        );
        for p in group.partitions.iter().filter(|p| p.lag > 0) {
            println!(
                "  {:<38} {:<20} {:>7} {:>10} {:>10}",
                format!("{}[{}]", p.topic, p.partition),
                format!("at {} of {}", p.committed, p.end),
                "",
                p.lag,
                seconds(p.lag_seconds, p.lag)
            );
        }
    }
    if found.groups.is_empty() {
        println!("(no consumer groups)");
    }
}

/// A lag in time: `-` when caught up, `unknown` when it could not be read.
fn seconds(lag_seconds: Option<f64>, lag: i64) -> String {
    match (lag_seconds, lag) {
        (_, 0) => "-".into(),
        (Some(seconds), _) => format!("{seconds:.1}s"),
        (None, _) => "unknown".into(),
    }
}

fn print_browsed(browsed: &Browsed) {
    for message in &browsed.messages {
        println!("{}", message_line(message));
    }
    let mut summary = format!(
        "{} messages shown; scanned {} (scan limit {})",
        browsed.messages.len(),
        browsed.scanned,
        browsed.scan_limit
    );
    if browsed.scan_limit_reached {
        summary.push_str(
            "; the scan limit was reached: older or later messages were not searched (raise --scan-limit)",
        );
    }
    if browsed.filter_errors > 0 {
        summary.push_str(&format!(
            "; {} messages could not be tested by --where (a field they lack)",
            browsed.filter_errors
        ));
    }
    if browsed.timed_out {
        summary.push_str("; reading timed out before the whole range was read");
    }
    eprintln!("{summary}");
}

/// `rates[0]@12 2026-12-06T21:00:00.123Z key=BTC {"rate":7.1}`, one line per message.
fn message_line(message: &Message) -> String {
    let time = message
        .timestamp
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| "-".to_string(), |t| t.to_string());
    let key = message
        .key
        .as_ref()
        .map_or_else(|| "-".to_string(), |k| k.display());
    let value = message
        .value
        .as_ref()
        .map_or_else(|| "(tombstone)".to_string(), |v| v.display());
    let headers: String = (message.headers.iter())
        .map(|h| {
            let value = h.value.as_ref().map(|v| v.display()).unwrap_or_default();
            format!(" {}={}", h.key, value)
        })
        .collect();
    format!(
        "{}[{}]@{} {time} key={key}{headers} {value}",
        message.topic, message.partition, message.offset
    )
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
