//! A Kafka broker as a local process: its configuration, command line and readiness check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::distribution::{java_binary, log4j_properties, KafkaDistribution};
use super::ProcessSpec;
use super::{ConfigFile, LocalService};
use crate::kafka_settings::{replication_settings, ZOOKEEPER_SESSION_TIMEOUT_MS};

/// The settings of one broker using ZooKeeper for metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    pub port: u16,
    pub broker_id: u32,
    /// `host:port` of the ZooKeeper ensemble.
    pub zookeeper: String,
    /// Holds configuration and the log segments; removed when the instance goes.
    pub dir: PathBuf,
    pub heap_mb: u32,
    pub default_partitions: u32,
    pub auto_create_topics: bool,
    /// Brokers in the cluster this one belongs to (1 for a lone broker).
    pub cluster_size: u32,
}

impl BrokerSettings {
    pub fn server_properties(&self) -> String {
        let listener = format!("PLAINTEXT://127.0.0.1:{}", self.port);
        format!(
            "broker.id={id}\n\
             listeners={listener}\n\
             advertised.listeners={listener}\n\
             zookeeper.connect={zk}\n\
             zookeeper.connection.timeout.ms=30000\n\
             zookeeper.session.timeout.ms={session_ms}\n{common}",
            session_ms = ZOOKEEPER_SESSION_TIMEOUT_MS,
            id = self.broker_id,
            zk = self.zookeeper,
            common = common_properties(
                &self.dir,
                self.default_partitions,
                self.auto_create_topics,
                self.cluster_size
            ),
        )
    }

    /// Files and command line of the broker.
    pub fn render(&self, distribution: &KafkaDistribution) -> LocalService {
        LocalService {
            endpoint: Some(self.endpoint()),
            // Its registration outlives it by the session timeout; started sooner, it fails.
            restart_delay: Some(Duration::from_millis(
                u64::from(ZOOKEEPER_SESSION_TIMEOUT_MS) + 1_000,
            )),
            ..broker_service(
                &self.dir,
                self.heap_mb,
                self.server_properties(),
                distribution,
                None,
            )
        }
    }

    /// `127.0.0.1:port`, the bootstrap address clients use.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The settings of one combined broker and controller in KRaft mode (no ZooKeeper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KraftSettings {
    pub port: u16,
    /// This node's id: 1, 2, … (its controller listens on `quorum_ports[node_id - 1]`).
    pub node_id: u32,
    /// The controller ports of every node of the cluster, in node id order.
    pub quorum_ports: Vec<u16>,
    pub dir: PathBuf,
    pub heap_mb: u32,
    pub default_partitions: u32,
    pub auto_create_topics: bool,
    /// 22-character base64url cluster id the storage is formatted with.
    pub cluster_id: String,
}

impl KraftSettings {
    pub fn server_properties(&self) -> String {
        let voters: Vec<String> = (self.quorum_ports.iter().enumerate())
            .map(|(index, port)| format!("{}@127.0.0.1:{port}", index + 1))
            .collect();
        format!(
            "process.roles=broker,controller\n\
             node.id={node_id}\n\
             controller.quorum.voters={voters}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n{common}",
            port = self.port,
            node_id = self.node_id,
            voters = voters.join(","),
            controller = self.quorum_ports[self.node_id as usize - 1],
            common = common_properties(
                &self.dir,
                self.default_partitions,
                self.auto_create_topics,
                self.quorum_ports.len() as u32
            ),
        )
    }

    /// Files, the storage format step, and the command line of the broker.
    pub fn render(&self, distribution: &KafkaDistribution) -> LocalService {
        LocalService {
            endpoint: Some(format!("127.0.0.1:{}", self.port)),
            ..broker_service(
                &self.dir,
                self.heap_mb,
                self.server_properties(),
                distribution,
                Some(&self.cluster_id),
            )
        }
    }
}

/// Settings every sandbox broker wants: no rebalance delay, so that consumers start at once,
/// and replication that fits the cluster. A lone broker replicates nothing; a cluster keeps
/// `min(3, brokers)` copies of every partition, internal topics included, and acknowledges a
/// write (`acks=all`) once all but one of them have it; a replica that fell behind never
/// becomes leader (no unclean election), so an acknowledged record is never lost.
fn common_properties(dir: &Path, partitions: u32, auto_create: bool, brokers: u32) -> String {
    let mut text = format!(
        "log.dirs={logs}\n\
         num.partitions={partitions}\n\
         auto.create.topics.enable={auto_create}\n\
         group.initial.rebalance.delay.ms=0\n\
         delete.topic.enable=true\n",
        logs = dir.join("data").display(),
    );
    for (key, value) in replication_settings(brokers) {
        text.push_str(&format!("{key}={value}\n"));
    }
    text
}

fn broker_service(
    dir: &Path,
    heap_mb: u32,
    properties_text: String,
    distribution: &KafkaDistribution,
    kraft_cluster_id: Option<&str>,
) -> LocalService {
    let properties = dir.join("server.properties");
    let log4j = dir.join("log4j.properties");
    let java = |main: &str, args: &[String], heap: u32| ProcessSpec {
        program: java_binary(),
        args: [
            vec![
                format!("-Xmx{heap}m"),
                "-Djava.awt.headless=true".into(),
                format!("-Dlog4j.configuration=file:{}", log4j.display()),
                format!("-Dkafka.logs.dir={}", dir.join("logs").display()),
                "-cp".into(),
                distribution.class_path(),
                main.into(),
            ],
            args.to_vec(),
        ]
        .concat(),
        env: vec![],
        working_dir: dir.to_path_buf(),
        log_path: dir.join("kafka.log"),
    };
    let pre_start = kraft_cluster_id
        .map(|id| {
            vec![java(
                "kafka.tools.StorageTool",
                &[
                    "format".into(),
                    "-t".into(),
                    id.into(),
                    "-c".into(),
                    properties.display().to_string(),
                ],
                256,
            )]
        })
        .unwrap_or_default();
    LocalService {
        endpoint: None,
        files: vec![
            ConfigFile {
                path: properties.clone(),
                contents: properties_text,
            },
            ConfigFile {
                path: log4j.clone(),
                contents: log4j_properties(),
            },
        ],
        pre_start,
        process: java("kafka.Kafka", &[properties.display().to_string()], heap_mb),
        restart_delay: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_advertise_loopback_and_single_broker_replication() {
        let settings = BrokerSettings {
            port: 9092,
            broker_id: 0,
            zookeeper: "127.0.0.1:2181".into(),
            dir: "/w/kafka".into(),
            heap_mb: 512,
            default_partitions: 1,
            auto_create_topics: true,
            cluster_size: 1,
        };
        let text = settings.server_properties();
        for line in [
            "listeners=PLAINTEXT://127.0.0.1:9092",
            "advertised.listeners=PLAINTEXT://127.0.0.1:9092",
            "zookeeper.connect=127.0.0.1:2181",
            "log.dirs=/w/kafka/data",
            "offsets.topic.replication.factor=1",
            "default.replication.factor=1",
            "min.insync.replicas=1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        let service = settings.render(&KafkaDistribution {
            libs: "/jars".into(),
        });
        assert_eq!(
            service.process.args.last().unwrap(),
            "/w/kafka/server.properties"
        );
        assert_eq!(service.files.len(), 2);
    }

    #[test]
    fn a_cluster_replicates_three_times_and_acknowledges_on_two() {
        let kraft = |node_id| KraftSettings {
            port: 9092,
            node_id,
            quorum_ports: vec![9093, 9095, 9097],
            dir: "/w/kafka".into(),
            heap_mb: 512,
            default_partitions: 6,
            auto_create_topics: false,
            cluster_id: "abc".into(),
        };
        let text = kraft(2).server_properties();
        for line in [
            "node.id=2",
            "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097",
            "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9095",
            "default.replication.factor=3",
            "offsets.topic.replication.factor=3",
            "min.insync.replicas=2",
            "transaction.state.log.min.isr=2",
            "unclean.leader.election.enable=false",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }
}
