//! `weir topology run|check`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use tokio::sync::watch;
use warp::Filter;
use weir_contracts::status::RunnerStatus;
use weir_topology::metrics::{self, Metrics};
use weir_topology::runner::{self, RunnerConfig};
use weir_topology::spec::TopologySpec;
use weir_topology::status;

use weir_contracts::args::{parse_assignment, RunTopologyArgs};

use super::{runtime, signals};

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Run a topology until SIGINT/SIGTERM.
    Run(RunTopologyArgs),
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
        TopologyCommand::Run(RunTopologyArgs {
            file,
            brokers,
            set,
            addr,
            log_interval,
        }) => {
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
    let (status_tx, status_rx) = watch::channel(RunnerStatus::new(&spec.name));
    let server = match addr {
        Some(addr) => {
            let routes = status::route(status_rx)
                .or(metrics::route(metrics.clone()))
                .unify()
                .boxed();
            let server = status::Server::start(addr, routes)
                .await
                .with_context(|| format!("cannot listen on {addr} for status and metrics"))?;
            // Printed on stdout so that a supervisor can find a port chosen with :0.
            println!("status: http://{}/status", server.addr);
            println!("metrics: http://{}/metrics", server.addr);
            Some(server)
        }
        None => None,
    };
    let result = runner::run(
        &spec,
        &config,
        metrics,
        &status_tx,
        signals::shutdown_requested(),
    )
    .await;
    if let Some(server) = server {
        server.stop().await;
    }
    result.with_context(|| format!("topology `{}` stopped with an error", spec.name))
}
