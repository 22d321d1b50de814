//! Command-line definitions and dispatch. Each sub-module owns one command family.

mod backend;
mod bench;
mod charts;
mod runs;
mod schema;
mod serve;
mod services;
mod signals;
mod source;
mod topics;
mod topology;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Workflow-orchestrated streaming sandbox"
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The web UI and REST API.
    Serve(serve::ServeArgs),
    /// Check a workflow file without starting anything.
    Validate(runs::ValidateArgs),
    /// The JSON Schema of workflow or topology files, for editors (e.g. yaml-language-server).
    Schema(schema::SchemaArgs),
    /// Run a workflow to its end.
    Run(runs::RunArgs),
    /// Runs with their state; `weir runs show ID` for one.
    Runs(runs::RunsArgs),
    /// Approve a run awaiting approval.
    Approve(runs::AnswerArgs),
    /// Reject a run awaiting approval.
    Reject(runs::AnswerArgs),
    /// Services on offer, with their parameters.
    Catalog(services::CatalogArgs),
    /// Start a service instance (and the dependencies it lacks).
    Up(services::UpArgs),
    /// Stop a service instance, or all of them.
    Down(services::DownArgs),
    /// Service instances with their state and endpoint.
    Instances(services::InstancesArgs),
    /// Remove whatever crashed `weir` processes left behind.
    Gc(services::GcArgs),
    /// Run or check a topology (Kafka in → operators → Kafka out).
    #[command(subcommand)]
    Topology(topology::TopologyCommand),
    /// The live chart server.
    #[command(subcommand)]
    Charts(charts::ChartsCommand),
    /// Create, count or wait for Kafka topics (what a workflow's data-path tasks run).
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Feed a Kafka topic from a live HTTP endpoint or a recording.
    #[command(subcommand)]
    Source(source::SourceCommand),
    /// Benchmarks that print ratios against a reference measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Validate(args) => runs::validate(args),
        Command::Schema(args) => schema::run(args),
        Command::Run(args) => runs::run(args),
        Command::Runs(args) => runs::runs(args),
        Command::Approve(args) => runs::answer(args, weir::runs::Answer::Approved),
        Command::Reject(args) => runs::answer(args, weir::runs::Answer::Rejected),
        Command::Catalog(args) => services::catalog(args),
        Command::Up(args) => services::up(args),
        Command::Down(args) => services::down(args),
        Command::Instances(args) => services::instances(args),
        Command::Gc(args) => services::gc(args),
        Command::Topology(command) => topology::run(command),
        Command::Source(command) => source::run(command),
        Command::Topics(command) => topics::run(command),
        Command::Charts(command) => charts::run(command),
        Command::Bench(command) => bench::run(command),
    }
}

/// Parses `NAME=VALUE` for `--set`.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

/// Parses a duration argument such as `5s` or `250ms`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    weir_topology::duration::parse_duration(text)
}

/// A multi-threaded runtime for the async commands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
