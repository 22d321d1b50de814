//! Command-line definitions and dispatch. Each sub-module owns one command family.

mod backend;
mod bench;
mod cdc;
mod charts;
mod dlq;
mod logs;
mod members;
mod runs;
mod schema;
mod serve;
mod services;
mod signals;
mod source;
mod topics;
mod topology;
mod validate;

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
    /// Check a workflow without starting anything (every problem at once); `--vars` lists
    /// its variables.
    Validate(validate::ValidateArgs),
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
    /// Change how many replicas of a running instance run (a topology's runners).
    Scale(services::ScaleArgs),
    /// Service instances with their state and endpoint.
    Instances(services::InstancesArgs),
    /// Remove whatever crashed `weir` processes left behind.
    Gc(services::GcArgs),
    /// An instance's log, or the logs a run kept after its teardown (`--run ID`).
    Logs(logs::LogsArgs),
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
    /// Change data capture: generate change events, verify a target against them.
    #[command(subcommand)]
    Cdc(cdc::CdcCommand),
    /// Dead letters: send them back through the step that refused them.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Benchmarks that print ratios against a reference measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// This weir's version, and the Kafka it starts.
    Version {
        #[arg(long)]
        json: bool,
    },
    /// A shell completion script, e.g. `weir completions bash > ~/.local/share/bash-completion/completions/weir`.
    Completions { shell: clap_complete::Shell },
    /// The supervisor of a multi-process local instance (started by `weir up`).
    #[command(subcommand, hide = true)]
    Members(members::MembersCommand),
}

impl Cli {
    /// Services (the web UI, runners, chart servers, sources) log what they do; commands a
    /// person types show their own progress, and only warnings and errors besides.
    fn quiet_logs(&self) -> bool {
        !matches!(
            self.command,
            Command::Serve(_)
                | Command::Topology(topology::TopologyCommand::Run(_))
                | Command::Charts(charts::ChartsCommand::Serve(_))
                | Command::Source(_)
                | Command::Members(_)
        )
    }
}

pub fn init_logging(cli: &Cli) {
    let default = match (cli.verbose, cli.quiet_logs()) {
        (0, true) => "warn",
        (0, false) => "info",
        (1, _) => "debug",
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
        Command::Validate(args) => validate::validate(args),
        Command::Schema(args) => schema::run(args),
        Command::Run(args) => runs::run(args),
        Command::Runs(args) => runs::runs(args),
        Command::Approve(args) => runs::answer(args, weir::runs::Answer::Approved),
        Command::Reject(args) => runs::answer(args, weir::runs::Answer::Rejected),
        Command::Catalog(args) => services::catalog(args),
        Command::Up(args) => services::up(args),
        Command::Down(args) => services::down(args),
        Command::Scale(args) => services::scale(args),
        Command::Instances(args) => services::instances(args),
        Command::Gc(args) => services::gc(args),
        Command::Logs(args) => logs::logs(args),
        Command::Version { json } => version(json),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "weir", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Topology(command) => topology::run(command),
        Command::Source(command) => source::run(command),
        Command::Cdc(command) => cdc::run(command),
        Command::Dlq(command) => dlq::run(command),
        Command::Topics(command) => topics::run(command),
        Command::Charts(command) => charts::run(command),
        Command::Bench(command) => bench::run(command),
        Command::Members(command) => members::run(command),
    }
}

fn version(json: bool) -> anyhow::Result<ExitCode> {
    let weir = env!("CARGO_PKG_VERSION");
    let kafka = weir_catalog::local::distribution::KAFKA_VERSION;
    match json {
        true => println!("{}", serde_json::json!({ "weir": weir, "kafka": kafka })),
        false => println!("weir {weir} (starts Apache Kafka {kafka})"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `NAME=VALUE` for `--set`.
pub use weir_contracts::args::parse_assignment;

/// Parses a duration argument such as `5s` or `250ms`.
pub use weir_contracts::duration::parse_duration;

/// A multi-threaded runtime for the async commands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use weir_catalog::command::{Placement, WeirCommand};
    use weir_catalog::kubernetes::{self, KubeInstance, KubeObject};
    use weir_catalog::local::render::{render, LocalContext};
    use weir_contracts::service_kind::ServiceKind;

    use super::*;

    /// Parameters with values that broke the old string contracts: commas, semicolons, equals
    /// signs, quotes and braces.
    fn sample(service: &str) -> Vec<(String, String)> {
        let pairs: &[(&str, &str)] = match service {
            "topology-runner" => &[
                ("file", "/w/t.yaml"),
                (
                    "params",
                    r#"{threshold: 60, rate_topic: "r; s=t", label: "a, \"b\" {c}"}"#,
                ),
            ],
            "chart-server" => &[
                ("kafka", "kafka-1"),
                (
                    "windows",
                    "[{topic: rates, y: rate, title: 'Close (USD, replayed) | x=1'}, \
                      {topic: alerts, y: variation, kind: markers}]",
                ),
            ],
            "http-source" => &[
                ("url", "https://example.com/spot?a=1,2"),
                ("topic", "raw"),
                ("interval", "250ms"),
            ],
            "replay-source" => &[("file", "/w/r.csv"), ("topic", "raw"), ("repeat", "true")],
            _ => &[],
        };
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The typed command a parsed `weir` command line holds, when it is a catalog service's.
    fn carried(command: Command) -> Option<WeirCommand> {
        match command {
            Command::Topology(topology::TopologyCommand::Run(args)) => {
                Some(WeirCommand::RunTopology(args))
            }
            Command::Charts(charts::ChartsCommand::Serve(args)) => {
                Some(WeirCommand::ServeCharts(args))
            }
            Command::Source(source::SourceCommand::Http(args)) => {
                Some(WeirCommand::HttpSource(args))
            }
            Command::Source(source::SourceCommand::Replay(args)) => {
                Some(WeirCommand::ReplaySource(args))
            }
            _ => None,
        }
    }

    fn parsed(args: &[String]) -> WeirCommand {
        let cli = Cli::try_parse_from(std::iter::once("weir".to_string()).chain(args.to_vec()))
            .unwrap_or_else(|e| panic!("`weir {}` does not parse: {e}", args.join(" ")));
        carried(cli.command).expect("a service command")
    }

    fn kubernetes_args(instance: &KubeInstance<'_>) -> Vec<String> {
        kubernetes::render(instance)
            .into_iter()
            .find_map(|object| match object {
                KubeObject::Deployment(d) => d.spec?.template.spec?.containers[0].args.clone(),
                KubeObject::StatefulSet(s) => s.spec?.template.spec?.containers[0].args.clone(),
                _ => None,
            })
            .expect("a workload with arguments")
    }

    #[test]
    fn every_rendered_service_command_line_parses_back_to_its_typed_command() {
        let mut checked = Vec::new();
        for service in weir_catalog::catalog::services() {
            let params = service.validate(&sample(service.kind.name())).unwrap();
            let local_placement = Placement {
                listen: service
                    .ports
                    .first()
                    .map(|_| SocketAddr::from(([127, 0, 0, 1], 9000))),
                kafka: Some("127.0.0.1:9092".into()),
                file: params.str("file").map(str::to_string),
            };
            let Some(local_expected) = WeirCommand::of(service.kind, &params, &local_placement)
            else {
                continue;
            };
            let ports = service
                .ports
                .iter()
                .map(|p| (p.name.to_string(), 9000))
                .collect();
            let local = render(
                service.kind,
                &LocalContext {
                    instance: "inst".into(),
                    dir: "/w/inst".into(),
                    ports,
                    params: params.clone(),
                    dependencies: BTreeMap::from([("kafka".into(), "127.0.0.1:9092".into())]),
                    weir_exe: "/bin/weir".into(),
                },
            )
            .unwrap();
            assert_eq!(
                parsed(&local.process.args),
                local_expected,
                "{}",
                service.kind
            );

            let files = match service.kind.name() {
                "replay-source" => BTreeMap::from([("r.csv".into(), "a\n1\n".into())]),
                _ => BTreeMap::new(),
            };
            let cluster_args = kubernetes_args(&KubeInstance {
                name: "inst",
                service: &service,
                params: &params,
                dependencies: BTreeMap::from([("kafka".into(), "kafka-1:9092".into())]),
                files,
                run_id: None,
            });
            let cluster_placement = Placement {
                listen: service
                    .ports
                    .first()
                    .map(|p| SocketAddr::from(([0, 0, 0, 0], p.container_port))),
                kafka: Some("kafka-1:9092".into()),
                file: match service.kind.name() {
                    "topology-runner" => Some("/etc/weir/topology.yaml".into()),
                    "replay-source" => Some("/etc/weir/r.csv".into()),
                    _ => None,
                },
            };
            let cluster_expected =
                WeirCommand::of(service.kind, &params, &cluster_placement).unwrap();
            assert_eq!(parsed(&cluster_args), cluster_expected, "{}", service.kind);
            checked.push(service.kind.name());
        }
        assert_eq!(
            checked,
            [
                "topology-runner",
                "chart-server",
                "http-source",
                "replay-source"
            ]
        );
    }

    #[test]
    fn values_survive_the_command_line_whole() {
        let service = weir_catalog::catalog::find("topology-runner").unwrap();
        let params = service.validate(&sample("topology-runner")).unwrap();
        let placement = Placement {
            listen: None,
            kafka: Some("k:9092".into()),
            file: Some("/t.yaml".into()),
        };
        let WeirCommand::RunTopology(args) = parsed(
            &WeirCommand::of(ServiceKind::TopologyRunner, &params, &placement)
                .unwrap()
                .args(),
        ) else {
            panic!("not a topology command")
        };
        assert!(args.set.contains(&("label".into(), r#"a, "b" {c}"#.into())));
        assert!(args.set.contains(&("rate_topic".into(), "r; s=t".into())));
    }
}
