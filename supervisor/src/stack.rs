//! A ZooKeeper and a Kafka broker on free loopback ports, started together and waited for.
//! The test harness and the benchmarks use it; the orchestrator's local runtime starts the
//! same two services one instance at a time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_catalog::local::distribution::{DistributionError, KafkaDistribution};
use weir_catalog::local::kafka::BrokerSettings;
use weir_catalog::local::zookeeper::{self, ZooKeeperSettings};

use crate::ports::free_port;
use crate::process::{Lifetime, ManagedProcess, ProcessError};
use crate::readiness::{answers_metadata, zookeeper_is_ready, NeverReady, NotServing};

/// Errors starting the stack.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("cannot prepare {path}: {source}")]
    Files {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{service} did not become ready within {timeout:?}: {reason}\n--- last lines of {log} ---\n{tail}")]
    NotReady {
        service: &'static str,
        timeout: Duration,
        reason: Box<NeverReady>,
        log: String,
        tail: String,
    },
}

/// A running ZooKeeper + Kafka pair. Dropping it stops both.
#[derive(Debug)]
pub struct KafkaStack {
    // Field order matters: the broker stops before its ZooKeeper.
    kafka: ManagedProcess,
    zookeeper: ManagedProcess,
    bootstrap: String,
    zookeeper_endpoint: String,
    dir: PathBuf,
}

impl KafkaStack {
    /// Starts both services under `dir` and waits until the broker answers metadata.
    pub fn start(dir: &Path, lifetime: Lifetime, timeout: Duration) -> Result<Self, StackError> {
        let distribution = KafkaDistribution::locate()?;
        let zk_settings = ZooKeeperSettings {
            client_port: free_port().map_err(|source| files_error(dir, source))?,
            dir: dir.join("zookeeper"),
            heap_mb: 256,
        };
        let zk_service = zk_settings.render(&distribution);
        zk_service
            .write_files()
            .map_err(|source| files_error(&zk_settings.dir, source))?;
        let mut zookeeper = ManagedProcess::spawn("zookeeper", &zk_service.process, lifetime)?;
        let zk_port = zk_settings.client_port;
        wait_until("zookeeper", &mut zookeeper, timeout, || {
            if zookeeper_is_ready(zk_port) {
                Ok(())
            } else {
                Err(NotServing::ZooKeeper)
            }
        })?;

        let broker = BrokerSettings {
            port: free_port().map_err(|source| files_error(dir, source))?,
            broker_id: 0,
            zookeeper: zookeeper::endpoint(zk_port),
            dir: dir.join("kafka"),
            heap_mb: 768,
            default_partitions: 1,
            auto_create_topics: true,
            cluster_size: 1,
        };
        let kafka_service = broker.render(&distribution);
        kafka_service
            .write_files()
            .map_err(|source| files_error(&broker.dir, source))?;
        let mut kafka = ManagedProcess::spawn("kafka", &kafka_service.process, lifetime)?;
        let bootstrap = broker.endpoint();
        wait_until("kafka", &mut kafka, timeout, || {
            answers_metadata(&bootstrap, 1, Duration::from_secs(2)).map(|_| ())
        })?;
        Ok(Self {
            kafka,
            zookeeper,
            bootstrap,
            zookeeper_endpoint: zookeeper::endpoint(zk_port),
            dir: dir.to_path_buf(),
        })
    }

    /// `host:port` of the broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn zookeeper_endpoint(&self) -> &str {
        &self.zookeeper_endpoint
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pids(&self) -> [u32; 2] {
        [self.zookeeper.pid(), self.kafka.pid()]
    }

    /// Stops the broker, then ZooKeeper.
    pub fn stop(mut self) {
        self.kafka.stop(Duration::from_secs(20));
        self.zookeeper.stop(Duration::from_secs(10));
    }
}

fn files_error(path: &Path, source: std::io::Error) -> StackError {
    StackError::Files {
        path: path.to_path_buf(),
        source,
    }
}

/// Polls `check` until it succeeds, the process dies, or `timeout` passes.
pub fn wait_until(
    service: &'static str,
    process: &mut ManagedProcess,
    timeout: Duration,
    mut check: impl FnMut() -> Result<(), NotServing>,
) -> Result<(), StackError> {
    let started = Instant::now();
    let reason = loop {
        if !process.is_running() {
            break Box::new(NeverReady::Exited);
        }
        match check() {
            Ok(()) => {
                tracing::info!(service, elapsed = ?started.elapsed(), "ready");
                return Ok(());
            }
            Err(reason) if started.elapsed() >= timeout => break Box::new(reason.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    Err(StackError::NotReady {
        service,
        timeout,
        reason,
        log: process.log_path().display().to_string(),
        tail: process.log_tail(20),
    })
}
