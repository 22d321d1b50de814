//! A Kafka broker as a local process: its configuration, command line and readiness check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::distribution::{java_binary, log4j_properties, KafkaDistribution};
use super::process::ProcessSpec;
use super::{ConfigFile, LocalService};

/// A broker that dies loses its registration in ZooKeeper when its session expires; until
/// then a broker started again in its place cannot register. 6 s (ZooKeeper allows 4 to 40 s
/// at its 2 s tick) keeps a restart short.
const ZOOKEEPER_SESSION_TIMEOUT_MS: u32 = 6000;

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
            common = common_properties(&self.dir, self.default_partitions, self.auto_create_topics),
        )
    }

    /// Files and command line of the broker.
    pub fn render(&self, distribution: &KafkaDistribution) -> LocalService {
        broker_service(
            &self.dir,
            self.heap_mb,
            self.server_properties(),
            distribution,
            None,
        )
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
    pub controller_port: u16,
    pub dir: PathBuf,
    pub heap_mb: u32,
    pub default_partitions: u32,
    pub auto_create_topics: bool,
    /// 22-character base64url cluster id the storage is formatted with.
    pub cluster_id: String,
}

impl KraftSettings {
    pub fn server_properties(&self) -> String {
        format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n{common}",
            port = self.port,
            controller = self.controller_port,
            common = common_properties(&self.dir, self.default_partitions, self.auto_create_topics),
        )
    }

    /// Files, the storage format step, and the command line of the broker.
    pub fn render(&self, distribution: &KafkaDistribution) -> LocalService {
        broker_service(
            &self.dir,
            self.heap_mb,
            self.server_properties(),
            distribution,
            Some(&self.cluster_id),
        )
    }
}

/// Settings every single-broker sandbox wants: replication factor 1 for internal topics and
/// no rebalance delay, so that consumers start at once.
fn common_properties(dir: &Path, partitions: u32, auto_create: bool) -> String {
    format!(
        "log.dirs={logs}\n\
         num.partitions={partitions}\n\
         auto.create.topics.enable={auto_create}\n\
         offsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=1\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         transaction.state.log.num.partitions=1\n\
         group.initial.rebalance.delay.ms=0\n\
         delete.topic.enable=true\n",
        logs = dir.join("data").display(),
    )
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
    }
}

/// Ready when the broker answers a metadata request listing at least one broker.
pub fn answers_metadata(bootstrap: &str, timeout: Duration) -> Result<usize, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| e.to_string())?;
    match metadata.brokers().len() {
        0 => Err("the metadata lists no broker yet".into()),
        brokers => Ok(brokers),
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
        };
        let text = settings.server_properties();
        for line in [
            "listeners=PLAINTEXT://127.0.0.1:9092",
            "advertised.listeners=PLAINTEXT://127.0.0.1:9092",
            "zookeeper.connect=127.0.0.1:2181",
            "log.dirs=/w/kafka/data",
            "offsets.topic.replication.factor=1",
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
}
