//! Readiness checks: a service is ready when it really serves.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;
use weir_catalog::service::Readiness;

/// Why a wait for a service's readiness ended without it.
#[derive(Debug, thiserror::Error)]
pub enum NeverReady {
    #[error("the process exited")]
    Exited,
    #[error("interrupted")]
    Interrupted,
    /// The supervisor of a service's members (replicas) is gone.
    #[error("its supervisor exited")]
    SupervisorExited,
    /// Not every member that should run does.
    #[error("running {running} while {wanted} are wanted")]
    MembersMissing { running: String, wanted: String },
    /// The time ran out; what the last check saw.
    #[error(transparent)]
    NotServing(#[from] NotServing),
}

/// What a service that is not ready yet failed to show.
#[derive(Debug, thiserror::Error)]
pub enum NotServing {
    /// The rendering gave the service no port (a catalog defect).
    #[error("the service has no port to check")]
    NoPort,
    /// Kafka's client could not be made or the metadata request failed.
    #[error("{0}")]
    Kafka(#[from] KafkaError),
    #[error("the metadata lists no broker yet")]
    NoBroker,
    /// A cluster whose brokers have not all joined yet.
    #[error("{listed} of the cluster's {brokers} brokers have registered")]
    BrokersMissing { listed: usize, brokers: usize },
    #[error("ZooKeeper does not answer `ruok` with `imok` yet")]
    ZooKeeper,
    #[error("nothing accepts connections on port {port} yet ({source})")]
    Refused { port: u16, source: std::io::Error },
    #[error("no HTTP answer: {0}")]
    NoHttpAnswer(std::io::Error),
    #[error("GET {path} answered `{status}`")]
    HttpStatus { path: String, status: String },
}

/// Checks once; `Err` says what is not ready yet. `ports` are the main ports of the
/// processes making the service (one, or a cluster's members): every member must serve, and
/// a Kafka cluster must list all of its brokers.
pub fn check(readiness: Readiness, ports: &[u16]) -> Result<(), NotServing> {
    let Some(&first) = ports.first() else {
        return Err(NotServing::NoPort);
    };
    match readiness {
        Readiness::KafkaMetadata => answers_metadata(
            &format!("127.0.0.1:{first}"),
            ports.len(),
            Duration::from_secs(2),
        )
        .map(|_| ()),
        Readiness::ZooKeeperRuok => ports.iter().try_for_each(|&port| {
            if zookeeper_is_ready(port) {
                Ok(())
            } else {
                Err(NotServing::ZooKeeper)
            }
        }),
        Readiness::Http { path } => ports.iter().try_for_each(|&port| http_ok(port, path)),
    }
}

/// `GET path` on the loopback port answers 200.
pub fn http_ok(port: u16, path: &str) -> Result<(), NotServing> {
    let mut stream =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1))
            .map_err(|source| NotServing::Refused { port, source })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
        .map_err(NotServing::NoHttpAnswer)?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(NotServing::NoHttpAnswer)?;
    let status = String::from_utf8_lossy(&head);
    if status.starts_with("HTTP/1.") && &status[9..12] == "200" {
        Ok(())
    } else {
        Err(NotServing::HttpStatus {
            path: path.to_string(),
            status: status.trim().to_string(),
        })
    }
}

/// Ready when the broker answers a metadata request listing all `brokers` brokers of its
/// cluster. The broker list comes from the metadata the controller sends every broker, so a
/// complete list also says that the cluster has a controller.
pub fn answers_metadata(
    bootstrap: &str,
    brokers: usize,
    timeout: Duration,
) -> Result<usize, NotServing> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()?;
    let metadata = consumer.fetch_metadata(None, timeout)?;
    match metadata.brokers().len() {
        0 => Err(NotServing::NoBroker),
        listed if listed < brokers => Err(NotServing::BrokersMissing { listed, brokers }),
        listed => Ok(listed),
    }
}

/// Sends ZooKeeper a four-letter command and returns the answer.
pub fn four_letter(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(command.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Ready when the server answers `ruok` with `imok` and `srvr` reports a serving mode.
pub fn zookeeper_is_ready(port: u16) -> bool {
    let ok = four_letter(port, "ruok").is_ok_and(|a| a == "imok");
    ok && four_letter(port, "srvr").is_ok_and(|a| {
        a.contains("Mode: standalone") || a.contains("Mode: leader") || a.contains("Mode: follower")
    })
}
