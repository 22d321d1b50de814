//! Several processes serving as one instance (a Kafka cluster's brokers): the member spec the
//! renderer writes for the supervisor (`weir members run SPEC`, in `weir-supervisor`) and the
//! status the supervisor writes back in [`STATUS_FILE`], so that `weir instances` and failure
//! drills can see (and kill) a single member.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigFile, LocalService, ProcessSpec};

/// The member spec the renderer writes in the instance's directory.
pub const SPEC_FILE: &str = "members-spec.json";
/// The status file the supervisor keeps in the spec's directory.
pub const STATUS_FILE: &str = "members.json";

/// What the supervisor runs: written by the renderer, read by `weir members run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSet {
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `broker-0`, `broker-1`, … (stable, as a StatefulSet's pod names are).
    pub name: String,
    /// Its own address (a broker's `host:port`, a replica's `http://host:port`).
    #[serde(default)]
    pub endpoint: Option<String>,
    pub process: ProcessSpec,
    /// The shortest wait before it starts again after dying, in milliseconds.
    #[serde(default)]
    pub restart_delay_ms: Option<u64>,
}

/// One member as the supervisor last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    /// Its own address (a broker's `host:port`, a replica's `http://host:port`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The running process; none while the member waits to be started again.
    pub pid: Option<u32>,
    /// How many times it was started again after dying.
    pub restarts: u32,
    /// How it last ended ("killed by SIGKILL"), if it ever did.
    pub last_exit: Option<String>,
}

/// Several rendered services as one: their files and preparation steps, the member spec
/// at `spec_path`, and `supervisor` (`weir members run SPEC`) as the process that keeps them.
/// Each member's endpoint is its own address.
pub fn as_one_service(
    members: Vec<(String, LocalService)>,
    spec_path: PathBuf,
    supervisor: ProcessSpec,
    endpoint: Option<String>,
) -> LocalService {
    let mut files = Vec::new();
    let mut pre_start = Vec::new();
    let mut set = MemberSet {
        members: Vec::new(),
    };
    for (name, service) in members {
        files.extend(service.files);
        pre_start.extend(service.pre_start);
        set.members.push(Member {
            name,
            endpoint: service.endpoint,
            process: service.process,
            restart_delay_ms: (service.restart_delay)
                .map(|delay| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
        });
    }
    files.push(ConfigFile {
        path: spec_path,
        contents: serde_json::to_string_pretty(&set).expect("member specs serialize"),
    });
    LocalService {
        endpoint,
        files,
        pre_start,
        process: supervisor,
        restart_delay: None,
    }
}
