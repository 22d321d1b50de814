//! Readiness checks: a service is ready when it really serves.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use weir_catalog::service::Readiness;

/// Checks once; `Err` says what is not ready yet. `ports` are the main ports of the
/// processes making the service (one, or a cluster's members): every member must serve, and
/// a Kafka cluster must list all of its brokers.
pub fn check(readiness: Readiness, ports: &[u16]) -> Result<(), String> {
    let Some(&first) = ports.first() else {
        return Err("the service has no port to check".into());
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
                Err("ZooKeeper does not answer `ruok` with `imok` yet".into())
            }
        }),
        Readiness::Http { path } => ports.iter().try_for_each(|&port| http_ok(port, path)),
    }
}

/// `GET path` on the loopback port answers 200.
pub fn http_ok(port: u16, path: &str) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1))
            .map_err(|e| format!("nothing accepts connections on port {port} yet ({e})"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("no HTTP answer: {e}"))?;
    let status = String::from_utf8_lossy(&head);
    if status.starts_with("HTTP/1.") && &status[9..12] == "200" {
        Ok(())
    } else {
        Err(format!("GET {path} answered `{}`", status.trim()))
    }
}

/// Ready when the broker answers a metadata request listing all `brokers` brokers of its
/// cluster. The broker list comes from the metadata the controller sends every broker, so a
/// complete list also says that the cluster has a controller.
pub fn answers_metadata(
    bootstrap: &str,
    brokers: usize,
    timeout: Duration,
) -> Result<usize, String> {
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
        listed if listed < brokers => Err(format!(
            "{listed} of the cluster's {brokers} brokers have registered"
        )),
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
