//! `weir topology run|check`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use weir_topology::metrics::{self, Metrics};
use weir_topology::runner::{self, RunnerConfig};
use weir_topology::spec::TopologySpec;

use super::{parse_assignment, parse_duration, runtime, signals};

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Run a topology until SIGINT/SIGTERM.
    Run {
        /// The topology file (YAML).
        file: PathBuf,
        /// Kafka bootstrap servers.
        #[arg(long, env = "WEIR_BROKERS")]
        brokers: String,
        /// Override a parameter declared under `params`.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
        set: Vec<(String, String)>,
        /// Serve Prometheus metrics on `/metrics` at this address (port 0 picks one).
        #[arg(long = "addr", value_name = "HOST:PORT")]
        addr: Option<SocketAddr>,
        /// How often to log progress.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        log_interval: Duration,
    },
    /// Check a topology file without connecting to Kafka.
    Check {
        file: PathBuf,
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
        set: Vec<(String, String)>,
    },
}

pub fn run(command: TopologyCommand) -> anyhow::Result<ExitCode> {
    match command {
        TopologyCommand::Check { file, set } => {
            let spec = TopologySpec::load(&file, &set)?;
            println!(
                "{}: topology `{}` is valid ({} operators, reads `{}`, writes {})",
                file.display(),
                spec.name,
                spec.operators.len(),
                spec.input.topic,
                spec.output_topics().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        TopologyCommand::Run {
            file,
            brokers,
            set,
            addr,
            log_interval,
        } => {
            let spec = TopologySpec::load(&file, &set)?;
            let mut config = RunnerConfig::new(brokers);
            config.log_interval = log_interval;
            runtime()?.block_on(run_topology(spec, config, addr))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_topology(
    spec: TopologySpec,
    config: RunnerConfig,
    addr: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(&spec.name));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_server = match addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            let bound = listener.local_addr()?;
            // Printed on stdout so that a supervisor can find a port chosen with :0.
            println!("metrics: http://{bound}/metrics");
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(metrics::serve(
                listener,
                metrics.clone(),
                async move {
                    let _ = stop.changed().await;
                },
            )))
        }
        None => None,
    };
    let result = runner::run(&spec, &config, metrics, signals::shutdown_requested()).await;
    let _ = stop_tx.send(true);
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    result.with_context(|| format!("topology `{}` stopped with an error", spec.name))
}
