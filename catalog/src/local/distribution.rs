//! Where the Kafka and ZooKeeper jars and the Java runtime are.

use std::path::{Path, PathBuf};

/// The Kafka version `scripts/install-kafka` installs by default.
pub const KAFKA_VERSION: &str = "3.9.1";

/// Errors locating the Kafka jars.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error(
        "KAFKA_HOME={0} has no libs/ directory; point it at an unpacked Apache Kafka download"
    )]
    BadKafkaHome(PathBuf),
    #[error("Apache Kafka {version} is not installed in {dir}; run `make setup` (or scripts/install-kafka), or set KAFKA_HOME")]
    NotInstalled { version: String, dir: PathBuf },
}

/// A directory of jars holding the Kafka broker, its tools and ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaDistribution {
    pub libs: PathBuf,
}

impl KafkaDistribution {
    /// `KAFKA_HOME/libs` when `KAFKA_HOME` is set, else the cache `scripts/install-kafka`
    /// fills (`$WEIR_CACHE` or `~/.cache/weir`, keyed by version).
    pub fn locate() -> Result<Self, DistributionError> {
        if let Some(home) = std::env::var_os("KAFKA_HOME").filter(|v| !v.is_empty()) {
            let libs = Path::new(&home).join("libs");
            return if libs.is_dir() {
                Ok(Self { libs })
            } else {
                Err(DistributionError::BadKafkaHome(PathBuf::from(home)))
            };
        }
        let version = std::env::var("KAFKA_VERSION").unwrap_or_else(|_| KAFKA_VERSION.into());
        let libs = cache_dir().join(format!("kafka-{version}")).join("libs");
        if libs.join(".complete").is_file() {
            Ok(Self { libs })
        } else {
            Err(DistributionError::NotInstalled { version, dir: libs })
        }
    }

    /// The Java class path covering every jar of the distribution.
    pub fn class_path(&self) -> String {
        format!("{}/*", self.libs.display())
    }
}

/// Weir's download and build cache, outside any repository.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache").join("weir")
}

/// `$JAVA_HOME/bin/java` when `JAVA_HOME` is set, else `java` from `PATH`.
pub fn java_binary() -> PathBuf {
    match std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        Some(home) => Path::new(&home).join("bin").join("java"),
        None => PathBuf::from("java"),
    }
}

/// A log4j configuration sending everything to standard output, which the process handle
/// captures into the service's log file.
pub fn log4j_properties() -> String {
    "log4j.rootLogger=INFO, stdout\n\
     log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n\
     log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n\
     log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n\
     log4j.logger.org.apache.zookeeper=WARN\n\
     log4j.logger.kafka.server.KafkaConfig=WARN\n\
     log4j.logger.org.apache.kafka.common.config=WARN\n"
        .to_string()
}
