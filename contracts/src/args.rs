//! The command lines of the processes this crate provides — the topology runner and the two
//! sources — as typed values. The `weir` binary parses its arguments into these types and the
//! catalog renders a service's command line from them, so what one side writes the other
//! reads; a test in the orchestrator parses every rendered command line with the real
//! definitions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::duration::parse_duration;

/// A parsed command that can be written back as the arguments that parse to it.
pub trait CommandLine {
    /// The arguments after the subcommand's name (`weir topology run` …).
    fn to_args(&self) -> Vec<String>;
}

/// `weir topology run`: run a topology until SIGINT/SIGTERM.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct RunTopologyArgs {
    /// The topology file (YAML).
    pub file: PathBuf,
    /// Kafka bootstrap servers.
    #[arg(long, env = "WEIR_BROKERS")]
    pub brokers: String,
    /// Override a parameter declared under `params`.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub set: Vec<(String, String)>,
    /// Serve `/status` (JSON) and Prometheus `/metrics` at this address (port 0 picks one).
    #[arg(long = "addr", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// How often to log progress.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub log_interval: Duration,
}

impl CommandLine for RunTopologyArgs {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            self.file.display().to_string(),
            "--brokers".into(),
            self.brokers.clone(),
        ];
        for (name, value) in &self.set {
            args.extend(["--set".into(), format!("{name}={value}")]);
        }
        optional(&mut args, "--addr", self.addr.as_ref());
        args.extend(["--log-interval".into(), duration_arg(self.log_interval)]);
        args
    }
}

/// Where and how a source publishes, common to every source.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct PublishArgs {
    /// The topic receiving the documents.
    #[arg(long)]
    pub topic: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "WEIR_BROKERS")]
    pub brokers: String,
    /// Stop after this many documents.
    #[arg(long)]
    pub count: Option<u64>,
    /// Message key of every document (all go to one partition, in order).
    #[arg(long, conflicts_with = "key_pointer")]
    pub key: Option<String>,
    /// Key each document by the value at this JSON pointer (e.g. `/data/base`): documents
    /// of one key go, in order, to one partition. One without a value there is published
    /// without a key, with a warning.
    #[arg(long, value_name = "POINTER")]
    pub key_pointer: Option<String>,
    /// Serve `/status` (JSON) at this address (port 0 picks one).
    #[arg(long = "addr", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
}

impl CommandLine for PublishArgs {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--topic".into(),
            self.topic.clone(),
            "--brokers".into(),
            self.brokers.clone(),
        ];
        optional(&mut args, "--count", self.count.as_ref());
        optional(&mut args, "--key", self.key.as_ref());
        optional(&mut args, "--key-pointer", self.key_pointer.as_ref());
        optional(&mut args, "--addr", self.addr.as_ref());
        args
    }
}

/// `weir source http`: poll a URL every interval and publish each response body.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct HttpSourceArgs {
    /// The URL to poll (e.g. a public BTC→CNY price endpoint).
    #[arg(long)]
    pub url: String,
    /// Pause between two polls.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Time limit of one request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Longest wait between retries while the URL fails.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub max_backoff: Duration,
    #[command(flatten)]
    pub publish: PublishArgs,
}

impl CommandLine for HttpSourceArgs {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--url".into(),
            self.url.clone(),
            "--interval".into(),
            duration_arg(self.interval),
            "--timeout".into(),
            duration_arg(self.timeout),
            "--max-backoff".into(),
            duration_arg(self.max_backoff),
        ];
        args.extend(self.publish.to_args());
        args
    }
}

/// `weir source replay`: publish recorded documents (JSON Lines, or CSV with a header).
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ReplaySourceArgs {
    /// The recording.
    pub file: PathBuf,
    /// Pause between two documents.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Start over after the last document.
    #[arg(long)]
    pub repeat: bool,
    /// The recording holds Debezium change events (`op`, `before`, `after`, `source.table`;
    /// or the same inside `payload`): key each by its table's primary key, read from `after`
    /// (from `before` for a delete). `TABLE=COLUMN` pairs separated by commas, a composite
    /// key's columns joined by `+`, e.g. `members=member_id,lines=claim_id+line`. Not with
    /// `--key` or `--key-pointer`.
    #[arg(long, value_name = "TABLE=COLUMN,...")]
    pub change_events: Option<String>,
    #[command(flatten)]
    pub publish: PublishArgs,
}

impl CommandLine for ReplaySourceArgs {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            self.file.display().to_string(),
            "--interval".into(),
            duration_arg(self.interval),
        ];
        if self.repeat {
            args.push("--repeat".into());
        }
        optional(&mut args, "--change-events", self.change_events.as_ref());
        args.extend(self.publish.to_args());
        args
    }
}

/// A `--set` argument that is not `NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected NAME=VALUE, got `{0}`")]
pub struct NotAnAssignment(pub String);

/// Parses `NAME=VALUE` for `--set`.
pub fn parse_assignment(text: &str) -> Result<(String, String), NotAnAssignment> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(NotAnAssignment(text.to_string())),
    }
}

/// A duration as an argument, exact to the millisecond (what every duration option needs).
pub fn duration_arg(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// Appends `--flag value` when the value is given.
pub fn optional(args: &mut Vec<String>, flag: &str, value: Option<&impl ToString>) {
    if let Some(value) = value {
        args.extend([flag.to_string(), value.to_string()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Replay {
        #[command(flatten)]
        args: ReplaySourceArgs,
    }

    #[test]
    fn a_replay_command_line_parses_back_to_itself() {
        let args = ReplaySourceArgs {
            file: "/data/r.csv".into(),
            interval: Duration::from_millis(250),
            repeat: true,
            change_events: Some("members=member_id,lines=claim_id+line".into()),
            publish: PublishArgs {
                topic: "raw, with a comma".into(),
                brokers: "127.0.0.1:9092".into(),
                count: Some(7),
                key: None,
                key_pointer: Some("/data/base".into()),
                addr: Some("127.0.0.1:0".parse().unwrap()),
            },
        };
        let line = std::iter::once("replay".to_string()).chain(args.to_args());
        assert_eq!(Replay::try_parse_from(line).unwrap().args, args);
    }

    #[test]
    fn assignments_keep_everything_after_the_first_equals_sign() {
        assert_eq!(
            parse_assignment("pointer=/a=b"),
            Ok(("pointer".into(), "/a=b".into()))
        );
        assert!(parse_assignment("=x").is_err());
    }
}
