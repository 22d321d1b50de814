//! ZooKeeper as a local process: its configuration, command line and readiness check.

use std::path::{Path, PathBuf};

use super::distribution::{java_binary, log4j_properties, KafkaDistribution};
use super::ProcessSpec;
use super::{ConfigFile, LocalService};

/// The settings of one standalone ZooKeeper server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperSettings {
    pub client_port: u16,
    /// Holds configuration, snapshots and the log; removed when the instance goes.
    pub dir: PathBuf,
    pub heap_mb: u32,
}

impl ZooKeeperSettings {
    pub fn config(&self) -> String {
        format!(
            "dataDir={data}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             tickTime=2000\n\
             maxClientCnxns=0\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,stat\n",
            data = self.dir.join("data").display(),
            port = self.client_port,
        )
    }

    /// Files and command line of the server.
    pub fn render(&self, distribution: &KafkaDistribution) -> LocalService {
        let config = self.dir.join("zoo.cfg");
        let log4j = self.dir.join("log4j.properties");
        LocalService {
            endpoint: None,
            files: vec![
                ConfigFile {
                    path: config.clone(),
                    contents: self.config(),
                },
                ConfigFile {
                    path: log4j.clone(),
                    contents: log4j_properties(),
                },
            ],
            pre_start: vec![],
            process: ProcessSpec {
                program: java_binary(),
                args: vec![
                    format!("-Xmx{}m", self.heap_mb),
                    "-Djava.awt.headless=true".into(),
                    format!("-Dlog4j.configuration=file:{}", log4j.display()),
                    "-cp".into(),
                    distribution.class_path(),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
                    config.display().to_string(),
                ],
                env: vec![],
                working_dir: self.dir.clone(),
                log_path: self.dir.join("zookeeper.log"),
            },
            restart_delay: None,
        }
    }
}

/// `127.0.0.1:port`, the endpoint clients connect to.
pub fn endpoint(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Directory of the ZooKeeper data inside an instance directory.
pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_binds_loopback_and_allows_readiness_commands() {
        let settings = ZooKeeperSettings {
            client_port: 2181,
            dir: "/w/zk".into(),
            heap_mb: 256,
        };
        let config = settings.config();
        assert!(config.contains("clientPort=2181\n"));
        assert!(config.contains("clientPortAddress=127.0.0.1\n"));
        assert!(config.contains("dataDir=/w/zk/data\n"));
        assert!(
            config.contains("admin.enableServer=false\n"),
            "no stray :8080 admin server"
        );
        assert!(config.contains("4lw.commands.whitelist=ruok,srvr,stat\n"));
        let service = settings.render(&KafkaDistribution {
            libs: "/jars".into(),
        });
        assert_eq!(service.process.args.last().unwrap(), "/w/zk/zoo.cfg");
        assert!(service.process.args.contains(&"/jars/*".to_string()));
    }
}
