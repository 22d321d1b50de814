//! `weir bench`: benchmarks that print ratios against a reference measured in the same run,
//! on the same machine, so that a shared and noisy machine still gives comparable figures.

mod cdc;
mod charts;
mod platform;
mod topics;
mod topology;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Topology runner steady throughput, latency and memory next to a plain pass-through.
    Topology(topology::TopologyBenchArgs),
    /// A workflow's launch to every service ready, and its teardown, next to the bare start
    /// and stop of a ZooKeeper + Kafka pair.
    Platform(platform::PlatformBenchArgs),
    /// The topic browser on a big topic through `weir serve`, next to a bare consumer, and
    /// `weir serve`'s memory while live tails follow a busy topic.
    Topics(topics::TopicsBenchArgs),
    /// The CDC pipeline's change events per second next to a plain pass-through, and its
    /// end-to-end latency at steady paces (the seed's 70/s and ten times that).
    Cdc(cdc::CdcBenchArgs),
    /// Chart server appends/s and memory next to the real Visdom server under the same load.
    Charts {
        #[arg(long)]
        json: bool,
        /// Seconds per load step.
        #[arg(long, default_value_t = 3)]
        step_seconds: u64,
        /// Concurrent clients of each step, in order.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        clients: Vec<usize>,
        /// Python with the `visdom` package (default: the one `make setup` installs).
        #[arg(long, env = "VISDOM_PYTHON")]
        visdom_python: Option<PathBuf>,
    },
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Topology(args) => topology::run(args),
        BenchCommand::Platform(args) => platform::run(args),
        BenchCommand::Topics(args) => topics::run(args),
        BenchCommand::Cdc(args) => cdc::run(args),
        BenchCommand::Charts {
            json,
            step_seconds,
            clients,
            visdom_python,
        } => charts::run(json, step_seconds, clients, visdom_python),
    }
}

/// The Kafka a benchmark runs on: the brokers given, or a private ZooKeeper and Kafka started
/// in `workdir` (stopped when the returned stack is dropped), and its bootstrap servers.
fn given_or_private_kafka(
    brokers: Option<&str>,
    workdir: &std::path::Path,
) -> anyhow::Result<(Option<weir_supervisor::stack::KafkaStack>, String)> {
    if let Some(brokers) = brokers {
        return Ok((None, brokers.to_string()));
    }
    eprintln!("starting a private ZooKeeper and Kafka for the benchmark...");
    let stack = weir_supervisor::stack::KafkaStack::start(
        workdir,
        weir_supervisor::process::Lifetime::DiesWithParent,
        std::time::Duration::from_secs(120),
    )?;
    let bootstrap = stack.bootstrap().to_string();
    Ok((Some(stack), bootstrap))
}

/// Rounds to two decimals for reports.
fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A `/proc/PID/status` field in KiB: `VmRSS` (resident now) or `VmHWM` (peak). A figure
/// that cannot be read fails the benchmark rather than printing 0.
fn status_kb(pid: u32, field: MemoryField) -> anyhow::Result<u64> {
    let status = procfs::process::Process::new(pid as i32)
        .and_then(|process| process.status())
        .with_context(|| format!("cannot measure the memory of process {pid}"))?;
    let value = match field {
        MemoryField::Resident => status.vmrss,
        MemoryField::Peak => status.vmhwm,
    };
    value.with_context(|| format!("/proc/{pid}/status has no readable `{field:?}` figure"))
}

/// Which memory figure of a process.
#[derive(Debug, Clone, Copy)]
enum MemoryField {
    /// `VmRSS`: resident now.
    Resident,
    /// `VmHWM`: the peak resident size.
    Peak,
}
