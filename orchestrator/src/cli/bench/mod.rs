//! `weir bench`: benchmarks that print ratios against a reference measured in the same run,
//! on the same machine, so that a shared and noisy machine still gives comparable figures.

mod charts;
mod topology;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Topology runner throughput, latency and memory next to a plain pass-through.
    Topology {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Records pre-loaded for the throughput phase.
        #[arg(long, default_value_t = 200_000)]
        records: u64,
        /// Records produced at a steady pace for the latency phase.
        #[arg(long, default_value_t = 5_000)]
        live_records: u64,
        /// Pace of the latency phase, records per second.
        #[arg(long, default_value_t = 2_000)]
        live_rate: u64,
        /// Use this broker instead of starting a private ZooKeeper and Kafka.
        #[arg(long)]
        brokers: Option<String>,
        /// The topology to measure.
        #[arg(long, default_value = "workflows/topologies/bitcoin-yuan.yaml")]
        topology: PathBuf,
    },
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
        BenchCommand::Topology {
            json,
            records,
            live_records,
            live_rate,
            brokers,
            topology,
        } => topology::run(json, records, live_records, live_rate, brokers, topology),
        BenchCommand::Charts {
            json,
            step_seconds,
            clients,
            visdom_python,
        } => charts::run(json, step_seconds, clients, visdom_python),
    }
}

/// Rounds to two decimals for reports.
fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A `/proc/PID/status` field in KiB: `VmRSS` (resident now) or `VmHWM` (peak).
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(&format!("{field}:")))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
