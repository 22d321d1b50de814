//! Renders any catalog service as a local process.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::distribution::{DistributionError, KafkaDistribution};
use super::kafka::{BrokerSettings, KraftSettings};
use super::process::ProcessSpec;
use super::zookeeper::ZooKeeperSettings;
use super::LocalService;
use crate::command::{Placement, WeirCommand};
use crate::service::Params;

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
    #[error("service `{0}` has no local realization")]
    Unknown(String),
    #[error("{service}: missing {what}")]
    Missing { service: String, what: String },
}

impl LocalContext {
    fn port(&self, service: &str, name: &str) -> Result<u16, RenderError> {
        self.ports
            .get(name)
            .copied()
            .ok_or_else(|| RenderError::Missing {
                service: service.into(),
                what: format!("port `{name}`"),
            })
    }

    fn dependency(&self, service: &str, param: &str) -> Result<&str, RenderError> {
        self.dependencies
            .get(param)
            .map(String::as_str)
            .ok_or_else(|| RenderError::Missing {
                service: service.into(),
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
            env: vec![("RUST_LOG".into(), "info".into())],
            working_dir: self.dir.clone(),
            log_path: self.dir.join(format!("{}.log", self.instance)),
        }
    }
}

/// The files and processes of `service` for this instance.
pub fn render(service: &str, ctx: &LocalContext) -> Result<LocalService, RenderError> {
    match service {
        "zookeeper" => Ok(ZooKeeperSettings {
            client_port: ctx.port(service, "client")?,
            dir: ctx.dir.clone(),
            heap_mb: ctx.heap(),
        }
        .render(&KafkaDistribution::locate()?)),
        "kafka" => {
            let port = ctx.port(service, "broker")?;
            let partitions = ctx.params.int("partitions").unwrap_or(1) as u32;
            let auto_create = ctx.params.bool("auto_create_topics").unwrap_or(true);
            let distribution = KafkaDistribution::locate()?;
            if ctx.params.str("mode") == Some("kraft") {
                Ok(KraftSettings {
                    port,
                    controller_port: ctx.port(service, "controller")?,
                    dir: ctx.dir.clone(),
                    heap_mb: ctx.heap(),
                    default_partitions: partitions,
                    auto_create_topics: auto_create,
                    cluster_id: cluster_id(&ctx.instance),
                }
                .render(&distribution))
            } else {
                Ok(BrokerSettings {
                    port,
                    broker_id: 0,
                    zookeeper: ctx.dependency(service, "zookeeper")?.to_string(),
                    dir: ctx.dir.clone(),
                    heap_mb: ctx.heap(),
                    default_partitions: partitions,
                    auto_create_topics: auto_create,
                }
                .render(&distribution))
            }
        }
        weir_service => {
            let definition = crate::catalog::find(weir_service)
                .ok_or_else(|| RenderError::Unknown(weir_service.into()))?;
            let listen = match definition.ports.first() {
                Some(port) => Some(SocketAddr::from((
                    Ipv4Addr::LOCALHOST,
                    ctx.port(service, port.name)?,
                ))),
                None => None,
            };
            let needs_kafka = definition
                .needs
                .iter()
                .any(|n| n.service == "kafka" && n.applies(&ctx.params));
            let placement = Placement {
                listen,
                kafka: if needs_kafka {
                    Some(ctx.dependency(service, "kafka")?.to_string())
                } else {
                    None
                },
                file: ctx.params.str("file").map(str::to_string),
            };
            let args = WeirCommand::of(weir_service, &ctx.params, &placement)
                .ok_or_else(|| RenderError::Unknown(weir_service.into()))?
                .args();
            Ok(LocalService {
                files: vec![],
                pre_start: vec![],
                process: ctx.weir(args),
            })
        }
    }
}

/// Extra local ports a service needs beyond its catalog ports (KRaft's controller listener).
pub fn extra_local_ports(service: &str, params: &Params) -> Vec<&'static str> {
    match (service, params.str("mode")) {
        ("kafka", Some("kraft")) => vec!["controller"],
        _ => vec![],
    }
}

/// A KRaft cluster id: 16 bytes, base64url without padding, derived from the instance name and
/// the current time so that two instances never share one.
fn cluster_id(instance: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut bytes = [0u8; 16];
    for (round, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            instance,
            round,
            std::time::SystemTime::now(),
            std::process::id(),
        )
            .hash(&mut hasher);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    // A leading `-` would be read as an option by Kafka's storage tool: the first character
    // comes from the first 6 bits, which this keeps below 32 (a letter).
    bytes[0] &= 0x7f;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut bit_count = 0;
    let mut out = String::new();
    for byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        bit_count += 8;
        while bit_count >= 6 {
            bit_count -= 6;
            out.push(ALPHABET[((bits >> bit_count) & 63) as usize] as char);
        }
    }
    if bit_count > 0 {
        out.push(ALPHABET[((bits << (6 - bit_count)) & 63) as usize] as char);
    }
    out
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
        let service = render("topology-runner", &ctx).unwrap();
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
        let args = render("replay-source", &ctx)
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

    #[test]
    fn cluster_ids_are_22_url_safe_characters() {
        let id = cluster_id("kafka-1");
        assert_eq!(id.len(), 22);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(cluster_id("a"), cluster_id("b"));
        for i in 0..200 {
            assert!(cluster_id(&format!("k{i}")).starts_with(|c: char| c.is_ascii_alphabetic()));
        }
    }
}
