//! A Kafka broker as a local process: its configuration, command line and readiness check.

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::distribution::{java_binary, log4j_properties, KafkaDistribution};
use super::process::ProcessSpec;
use super::{ConfigFile, LocalService};

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
             log.dirs={logs}\n\
             zookeeper.connect={zk}\n\
             zookeeper.connection.timeout.ms=30000\n\
             num.partitions={partitions}\n\
             auto.create.topics.enable={auto}\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             transaction.state.log.num.partitions=1\n\
             group.initial.rebalance.delay.ms=0\n\
             delete.topic.enable=true\n",
            id = self.broker_id,
            logs = self.dir.join("data").display(),
            zk = self.zookeeper,
            partitions = self.default_partitions,
            auto = self.auto_create_topics,
        )
    }

    /// Files and command line of the broker.
    pub fn render(&self, distribution: &KafkaDistribution) -> LocalService {
        let properties = self.dir.join("server.properties");
        let log4j = self.dir.join("log4j.properties");
        LocalService {
            files: vec![
                ConfigFile {
                    path: properties.clone(),
                    contents: self.server_properties(),
                },
                ConfigFile {
                    path: log4j.clone(),
                    contents: log4j_properties(),
                },
            ],
            process: ProcessSpec {
                program: java_binary(),
                args: vec![
                    format!("-Xmx{}m", self.heap_mb),
                    format!("-Xms{}m", (self.heap_mb / 4).max(64)),
                    "-XX:+UseG1GC".into(),
                    "-Djava.awt.headless=true".into(),
                    format!("-Dlog4j.configuration=file:{}", log4j.display()),
                    format!("-Dkafka.logs.dir={}", self.dir.join("logs").display()),
                    "-cp".into(),
                    distribution.class_path(),
                    "kafka.Kafka".into(),
                    properties.display().to_string(),
                ],
                env: vec![],
                working_dir: self.dir.clone(),
                log_path: self.dir.join("kafka.log"),
            },
        }
    }

    /// `127.0.0.1:port`, the bootstrap address clients use.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        let service = settings.render(&KafkaDistribution { libs: "/jars".into() });
        assert_eq!(service.process.args.last().unwrap(), "/w/kafka/server.properties");
        assert_eq!(service.files.len(), 2);
    }
}
