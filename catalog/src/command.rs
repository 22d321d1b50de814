//! The `weir` command of each service the `weir` binary carries (runner, chart server,
//! sources), built as the typed arguments the binary parses. The local and Kubernetes
//! realizations differ only in where things are: the address to listen on, the Kafka
//! endpoint, and where input files are.

use std::net::SocketAddr;

use weir_contracts::args::{
    CommandLine, HttpSourceArgs, PublishArgs, ReplaySourceArgs, RunTopologyArgs,
};
use weir_contracts::chart_args::ChartServerArgs;

use crate::service::Params;
use weir_contracts::service_kind::ServiceKind;

/// Where a service finds what it needs, as seen from where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Address to listen on, for services with a port.
    pub listen: Option<SocketAddr>,
    /// Kafka bootstrap servers, when the service uses Kafka.
    pub kafka: Option<String>,
    /// The input file (topology or recording) as the service sees it.
    pub file: Option<String>,
}

/// A `weir` subcommand with its typed arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum WeirCommand {
    /// `weir topology run`
    RunTopology(RunTopologyArgs),
    /// `weir charts serve`
    ServeCharts(ChartServerArgs),
    /// `weir source http`
    HttpSource(HttpSourceArgs),
    /// `weir source replay`
    ReplaySource(ReplaySourceArgs),
}

impl WeirCommand {
    /// The command of `service`, or `None` for a service `weir` does not carry.
    pub fn of(service: ServiceKind, params: &Params, placement: &Placement) -> Option<WeirCommand> {
        let kafka = || placement.kafka.clone().unwrap_or_default();
        let file = || placement.file.clone().unwrap_or_default();
        let interval = || params.duration("interval").unwrap_or_default();
        let publish = || PublishArgs {
            topic: params.str("topic").unwrap_or_default().into(),
            brokers: kafka(),
            count: None,
            key: params.str("key").map(str::to_string),
            key_pointer: params.str("key_pointer").map(str::to_string),
            addr: placement.listen,
        };
        Some(match service {
            ServiceKind::TopologyRunner => WeirCommand::RunTopology(RunTopologyArgs {
                file: file().into(),
                brokers: kafka(),
                set: params
                    .mapping("params")
                    .map(|map| map.clone().into_iter().collect())
                    .unwrap_or_default(),
                addr: placement.listen,
                log_interval: std::time::Duration::from_secs(10),
            }),
            ServiceKind::ChartServer => {
                let windows = params.windows("windows").unwrap_or_default().to_vec();
                WeirCommand::ServeCharts(ChartServerArgs {
                    addr: placement.listen?,
                    brokers: (!windows.is_empty()).then(kafka),
                    windows,
                    retention: params.int("retention").unwrap_or(10_000) as usize,
                    // A catalog instance's charts live as long as it: snapshots are what stays.
                    env_path: None,
                })
            }
            ServiceKind::HttpSource => WeirCommand::HttpSource(HttpSourceArgs {
                url: params.str("url").unwrap_or_default().into(),
                interval: interval(),
                timeout: std::time::Duration::from_secs(10),
                max_backoff: std::time::Duration::from_secs(60),
                publish: publish(),
            }),
            ServiceKind::ReplaySource => WeirCommand::ReplaySource(ReplaySourceArgs {
                file: file().into(),
                interval: interval(),
                repeat: params.bool("repeat") == Some(true),
                change_events: params.str("change_events").map(str::to_string),
                publish: publish(),
            }),
            ServiceKind::ZooKeeper | ServiceKind::Kafka => return None,
        })
    }

    /// The arguments after `weir`.
    pub fn args(&self) -> Vec<String> {
        let (words, rest) = match self {
            WeirCommand::RunTopology(args) => (["topology", "run"], args.to_args()),
            WeirCommand::ServeCharts(args) => (["charts", "serve"], args.to_args()),
            WeirCommand::HttpSource(args) => (["source", "http"], args.to_args()),
            WeirCommand::ReplaySource(args) => (["source", "replay"], args.to_args()),
        };
        words.iter().map(|w| w.to_string()).chain(rest).collect()
    }
}
