//! Renders any catalog service as a local process.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::distribution::{DistributionError, KafkaDistribution};
use super::kafka::{BrokerSettings, KraftSettings};
use super::members;
use super::zookeeper::ZooKeeperSettings;
use super::LocalService;
use super::ProcessSpec;
use crate::command::{Placement, WeirCommand};
use crate::kafka_settings;
use crate::service::{Params, ServiceDefinition};
use weir_contracts::service_kind::ServiceKind;

/// What an instance is given to start with.
#[derive(Debug, Clone)]
pub struct LocalContext {
    pub instance: String,
    /// The instance's own directory (configuration, data, log); removed when it goes.
    pub dir: PathBuf,
    /// Port name → free loopback port chosen for it.
    pub ports: BTreeMap<String, u16>,
    pub params: Params,
    /// Need parameter (e.g. `kafka`) → endpoint of the instance satisfying it.
    pub dependencies: BTreeMap<String, String>,
    /// The `weir` binary, for services it carries (runner, sources).
    pub weir_exe: PathBuf,
}

/// Errors rendering a service.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    #[error("{0} is not a service the `weir` binary carries")]
    NotCarriedByWeir(ServiceKind),
    #[error("{service}: missing {what}")]
    Missing { service: ServiceKind, what: String },
}

impl LocalContext {
    fn port(&self, service: ServiceKind, name: &str) -> Result<u16, RenderError> {
        self.ports
            .get(name)
            .copied()
            .ok_or_else(|| RenderError::Missing {
                service,
                what: format!("port `{name}`"),
            })
    }

    fn dependency(&self, service: ServiceKind, param: &str) -> Result<&str, RenderError> {
        self.dependencies
            .get(param)
            .map(String::as_str)
            .ok_or_else(|| RenderError::Missing {
                service,
                what: format!("the endpoint of its `{param}` instance"),
            })
    }

    fn heap(&self) -> u32 {
        self.params.int("heap_mb").unwrap_or(512) as u32
    }

    fn weir(&self, args: Vec<String>) -> ProcessSpec {
        ProcessSpec {
            program: self.weir_exe.clone(),
            args,
            env: vec![("RUST_LOG".into(), service_log_filter())],
            working_dir: self.dir.clone(),
            log_path: self.dir.join(format!("{}.log", self.instance)),
        }
    }
}

/// The log filter of Weir's own service processes: `info`, or what `WEIR_SERVICE_LOG` says
/// (a `RUST_LOG` filter such as `info,librdkafka=debug`, with `WEIR_KAFKA_DEBUG` naming
/// librdkafka's debug contexts).
fn service_log_filter() -> String {
    std::env::var("WEIR_SERVICE_LOG")
        .ok()
        .filter(|filter| !filter.is_empty())
        .unwrap_or_else(|| "info".into())
}

/// The files and processes of `service` for this instance.
pub fn render(service: ServiceKind, ctx: &LocalContext) -> Result<LocalService, RenderError> {
    match service {
        ServiceKind::ZooKeeper => Ok(ZooKeeperSettings {
            client_port: ctx.port(service, "client")?,
            dir: ctx.dir.clone(),
            heap_mb: ctx.heap(),
        }
        .render(&KafkaDistribution::locate()?)),
        ServiceKind::Kafka => {
            let brokers = replicas(&ctx.params);
            let distribution = KafkaDistribution::locate()?;
            // KRaft nodes of one cluster share its id.
            let cluster_id = cluster_id(&ctx.instance);
            let mut members = (0..brokers)
                .map(|index| {
                    let service = broker(ctx, index, brokers, &cluster_id, &distribution)?;
                    Ok((format!("broker-{index}"), service))
                })
                .collect::<Result<Vec<_>, RenderError>>()?;
            if brokers == 1 {
                return Ok(members.remove(0).1);
            }
            let bootstrap = (0..brokers)
                .map(|index| {
                    let port = ctx.port(service, &member_name("broker", index))?;
                    Ok(format!("127.0.0.1:{port}"))
                })
                .collect::<Result<Vec<_>, RenderError>>()?
                .join(",");
            Ok(supervised(ctx, members, Some(bootstrap)))
        }
        weir_service => {
            let definition = crate::catalog::definition(weir_service);
            let mut replicas = weir_replicas(ctx, &definition)?;
            if replicas.len() == 1 {
                return Ok(replicas.remove(0).1);
            }
            Ok(supervised(ctx, replicas, None))
        }
    }
}

/// A service Weir carries (a topology's runners), its replicas kept by a supervisor even
/// when there is one: how `weir scale` renders an instance, so that its replicas can change
/// while it runs.
pub fn render_supervised(
    service: ServiceKind,
    ctx: &LocalContext,
) -> Result<LocalService, RenderError> {
    let definition = crate::catalog::definition(service);
    Ok(supervised(ctx, weir_replicas(ctx, &definition)?, None))
}

/// Each replica of a service Weir carries, named `replica-N`, with its own port as its
/// endpoint. A lone replica logs where the instance does.
fn weir_replicas(
    ctx: &LocalContext,
    definition: &ServiceDefinition,
) -> Result<Vec<(String, LocalService)>, RenderError> {
    let replicas = replicas(&ctx.params);
    let first_port = definition.ports.first().map(|p| p.name);
    (0..replicas)
        .map(|index| {
            let mut process = weir_process(ctx, definition, index)?;
            if replicas > 1 {
                process.log_path = ctx.dir.join(format!("replica-{index}.log"));
            }
            let endpoint = first_port
                .and_then(|port| ctx.ports.get(&member_name(port, index)))
                .map(|port| format!("http://127.0.0.1:{port}"));
            let service = LocalService {
                endpoint,
                files: vec![],
                pre_start: vec![],
                process,
                restart_delay: None,
            };
            Ok((format!("replica-{index}"), service))
        })
        .collect()
}

/// Members as one service kept by `weir members run`, reached at `endpoint` as a whole.
fn supervised(
    ctx: &LocalContext,
    parts: Vec<(String, LocalService)>,
    endpoint: Option<String>,
) -> LocalService {
    let spec = ctx.dir.join(members::SPEC_FILE);
    let supervisor = ctx.weir(vec![
        "members".into(),
        "run".into(),
        spec.display().to_string(),
    ]);
    members::as_one_service(parts, spec, supervisor, endpoint)
}

/// The `weir` process of replica `index` of a service Weir carries (runner, sources, chart
/// server): its command line, listening on that replica's port.
fn weir_process(
    ctx: &LocalContext,
    definition: &ServiceDefinition,
    index: u32,
) -> Result<ProcessSpec, RenderError> {
    let service = definition.kind;
    let listen = match definition.ports.first() {
        Some(port) => Some(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            ctx.port(service, &member_name(port.name, index))?,
        ))),
        None => None,
    };
    let needs_kafka = definition
        .needs
        .iter()
        .any(|n| n.service == ServiceKind::Kafka && n.applies(&ctx.params));
    let placement = Placement {
        listen,
        kafka: if needs_kafka {
            Some(ctx.dependency(service, "kafka")?.to_string())
        } else {
            None
        },
        file: ctx.params.str("file").map(str::to_string),
    };
    let args = WeirCommand::of(service, &ctx.params, &placement)
        .ok_or(RenderError::NotCarriedByWeir(service))?
        .args();
    Ok(ctx.weir(args))
}

/// Broker `index` of a Kafka cluster of `brokers` (a lone broker when `brokers` is 1: it
/// lives in the instance's own directory).
fn broker(
    ctx: &LocalContext,
    index: u32,
    brokers: u32,
    cluster_id: &str,
    distribution: &KafkaDistribution,
) -> Result<LocalService, RenderError> {
    let service = ServiceKind::Kafka;
    let port = ctx.port(service, &member_name("broker", index))?;
    let dir = if brokers == 1 {
        ctx.dir.clone()
    } else {
        ctx.dir.join(format!("broker-{index}"))
    };
    let default_partitions = ctx.params.int("partitions").unwrap_or(1) as u32;
    let auto_create_topics = ctx.params.bool("auto_create_topics").unwrap_or(true);
    if ctx.params.str("mode") == Some("kraft") {
        let quorum_ports = (0..brokers)
            .map(|i| ctx.port(service, &member_name("controller", i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KraftSettings {
            port,
            node_id: index + 1,
            quorum_ports,
            dir,
            heap_mb: ctx.heap(),
            default_partitions,
            auto_create_topics,
            cluster_id: cluster_id.into(),
        }
        .render(distribution))
    } else {
        Ok(BrokerSettings {
            port,
            broker_id: index,
            zookeeper: ctx.dependency(service, "zookeeper")?.to_string(),
            dir,
            heap_mb: ctx.heap(),
            default_partitions,
            auto_create_topics,
            cluster_size: brokers,
        }
        .render(distribution))
    }
}

/// How many processes make an instance with these parameters: a Kafka cluster's brokers,
/// a topology's replicas; one for everything else.
pub fn replicas(params: &Params) -> u32 {
    params.int("replicas").unwrap_or(1).max(1) as u32
}

/// The name of member `index` of a set: `broker` for the first (the name a lone broker's
/// port has always had), then `broker-1`, `broker-2`, …; also the name of each replica's
/// port.
pub fn member_name(base: &str, index: u32) -> String {
    match index {
        0 => base.into(),
        _ => format!("{base}-{index}"),
    }
}

/// Extra local ports a service needs beyond its catalog ports: the main port of each member
/// after the first (a cluster's brokers, a topology's replicas), KRaft's controller listeners.
pub fn extra_local_ports(definition: &ServiceDefinition, params: &Params) -> Vec<String> {
    let members = replicas(params);
    let mut ports: Vec<String> = match definition.ports.first() {
        Some(port) => (1..members).map(|i| member_name(port.name, i)).collect(),
        None => vec![],
    };
    if definition.kind == ServiceKind::Kafka && params.str("mode") == Some("kraft") {
        ports.extend((0..members).map(|i| member_name("controller", i)));
    }
    ports
}

/// The main port of each process making the instance, given the ports chosen for it.
pub fn member_ports(
    definition: &ServiceDefinition,
    params: &Params,
    ports: &BTreeMap<String, u16>,
) -> Vec<u16> {
    let Some(first) = definition.ports.first() else {
        return vec![];
    };
    (0..replicas(params))
        .filter_map(|index| ports.get(&member_name(first.name, index)).copied())
        .collect()
}

/// A KRaft cluster id that no other instance shares: seeded by the instance name, the time and
/// this process.
fn cluster_id(instance: &str) -> String {
    kafka_settings::cluster_id(&(instance, std::time::SystemTime::now(), std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;

    fn context(service: &str, given: &[(&str, &str)]) -> LocalContext {
        let given: Vec<(String, String)> = given
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LocalContext {
            instance: "inst".into(),
            dir: "/w/inst".into(),
            ports: BTreeMap::from([("http".into(), 9464), ("broker".into(), 9092)]),
            params: find(service).unwrap().validate(&given).unwrap(),
            dependencies: BTreeMap::from([("kafka".into(), "127.0.0.1:9092".into())]),
            weir_exe: "/bin/weir".into(),
        }
    }

    #[test]
    fn runner_command_line_carries_brokers_metrics_and_parameters() {
        let ctx = context(
            "topology-runner",
            &[
                ("file", "/w/t.yaml"),
                ("params", "{threshold: 60, rate_topic: 'r; s=t'}"),
            ],
        );
        let service = render(ServiceKind::TopologyRunner, &ctx).unwrap();
        assert_eq!(
            service.process.args,
            [
                "topology",
                "run",
                "/w/t.yaml",
                "--brokers",
                "127.0.0.1:9092",
                "--set",
                "rate_topic=r; s=t",
                "--set",
                "threshold=60",
                "--addr",
                "127.0.0.1:9464",
                "--log-interval",
                "10000ms"
            ]
        );
    }

    #[test]
    fn replay_source_passes_pace_and_repeat() {
        let ctx = context(
            "replay-source",
            &[
                ("file", "/w/r.csv"),
                ("topic", "raw"),
                ("interval", "250ms"),
                ("repeat", "true"),
            ],
        );
        let args = render(ServiceKind::ReplaySource, &ctx)
            .unwrap()
            .process
            .args
            .join(" ");
        assert_eq!(
            args,
            "source replay /w/r.csv --interval 250ms --repeat --topic raw --brokers 127.0.0.1:9092 \
             --addr 127.0.0.1:9464"
        );
    }
}
