//! Several processes serving as one instance (a Kafka cluster's brokers), kept by one small
//! supervisor, `weir members run SPEC`, the way a StatefulSet's controller keeps its pods:
//! every member is started; a member that dies is started again after a backoff that grows
//! while it keeps dying early; stopping the supervisor's process group stops every member at
//! once. The supervisor records each member's pid and restarts in [`STATUS_FILE`] beside the
//! spec, so that `weir instances` and failure drills can see (and kill) a single member.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::process::{Lifetime, ManagedProcess, ProcessError, ProcessSpec};
use super::{ConfigFile, LocalService};

/// The status file the supervisor keeps in the spec's directory.
pub const STATUS_FILE: &str = "members.json";

/// A member that lived at least this long before dying starts again after the shortest
/// backoff; one that keeps dying sooner waits twice as long each time (up to 32 s).
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF_DOUBLINGS: u32 = 5;
/// How long stopping members may take gracefully (a broker's controlled shutdown) before
/// they are killed.
const STOP_GRACE: Duration = Duration::from_secs(25);

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

impl MemberSet {
    /// Reads a spec file written by the renderer.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the member spec {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a member spec: {e}", path.display()))
    }
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
    }
}

/// The members' status as the supervisor of the instance in `dir` last wrote it.
pub fn read_status(dir: &Path) -> Result<Vec<MemberStatus>, String> {
    let path = dir.join(STATUS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("no member status at {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is unreadable: {e}", path.display()))
}

struct Slot<'a> {
    member: &'a Member,
    process: Option<ManagedProcess>,
    started_at: Instant,
    restart_at: Option<Instant>,
    restarts: u32,
    early_deaths: u32,
    last_exit: Option<String>,
}

impl Slot<'_> {
    fn status(&self) -> MemberStatus {
        MemberStatus {
            name: self.member.name.clone(),
            endpoint: self.member.endpoint.clone(),
            pid: self.process.as_ref().map(ManagedProcess::pid),
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
        }
    }
}

/// Runs every member until `stop` is set, then stops them all. Fails only when a member
/// cannot be started at all (its program is missing, its log cannot be opened).
pub fn supervise(
    set: &MemberSet,
    status_dir: &Path,
    stop: &AtomicBool,
) -> Result<(), ProcessError> {
    let status_path = status_dir.join(STATUS_FILE);
    let mut slots = Vec::with_capacity(set.members.len());
    for member in &set.members {
        slots.push(Slot {
            member,
            process: Some(spawn(member)?),
            started_at: Instant::now(),
            restart_at: None,
            restarts: 0,
            early_deaths: 0,
            last_exit: None,
        });
    }
    write_status(&status_path, &slots);
    while !stop.load(Ordering::SeqCst) {
        let mut changed = false;
        for slot in &mut slots {
            if let Some(process) = &mut slot.process {
                if let Some(how) = process.exit_description() {
                    let lived = slot.started_at.elapsed();
                    slot.early_deaths = if lived < HEALTHY_AFTER {
                        slot.early_deaths + 1
                    } else {
                        0
                    };
                    let backoff = FIRST_BACKOFF
                        * 2u32.pow(
                            slot.early_deaths
                                .saturating_sub(1)
                                .min(MAX_BACKOFF_DOUBLINGS),
                        );
                    eprintln!(
                        "member {} {how} after {:.1}s; starting it again in {}s",
                        slot.member.name,
                        lived.as_secs_f64(),
                        backoff.as_secs()
                    );
                    slot.last_exit = Some(how);
                    slot.process = None;
                    slot.restart_at = Some(Instant::now() + backoff);
                    changed = true;
                }
            }
            if slot.restart_at.is_some_and(|at| Instant::now() >= at) {
                slot.restart_at = None;
                match spawn(slot.member) {
                    Ok(process) => {
                        eprintln!(
                            "member {} started again (pid {})",
                            slot.member.name,
                            process.pid()
                        );
                        slot.process = Some(process);
                        slot.started_at = Instant::now();
                        slot.restarts += 1;
                    }
                    Err(error) => {
                        eprintln!("member {} cannot start again: {error}", slot.member.name);
                        slot.restart_at = Some(Instant::now() + FIRST_BACKOFF * 8);
                    }
                }
                changed = true;
            }
        }
        if changed {
            write_status(&status_path, &slots);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopping {} members", slots.len());
    // All at once: a cluster's brokers shut down together rather than one after another.
    for process in slots.iter().filter_map(|s| s.process.as_ref()) {
        // SAFETY: a plain syscall on our own child.
        unsafe { libc::kill(process.pid() as i32, libc::SIGTERM) };
    }
    for slot in &mut slots {
        if let Some(mut process) = slot.process.take() {
            process.stop(STOP_GRACE);
        }
    }
    write_status(&status_path, &slots);
    Ok(())
}

fn spawn(member: &Member) -> Result<ManagedProcess, ProcessError> {
    ManagedProcess::spawn(&member.name, &member.process, Lifetime::Member)
}

/// Written whole and renamed into place, so a reader never sees half a file.
fn write_status(path: &Path, slots: &[Slot<'_>]) {
    let statuses: Vec<MemberStatus> = slots.iter().map(Slot::status).collect();
    let temporary: PathBuf = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&statuses).expect("statuses serialize");
    if let Err(error) =
        std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path))
    {
        eprintln!("cannot write {}: {error}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::process::alive;
    use std::sync::Arc;

    fn sleeper(dir: &Path, name: &str) -> Member {
        Member {
            name: name.into(),
            endpoint: None,
            process: ProcessSpec {
                program: "sh".into(),
                args: vec!["-c".into(), "exec sleep 60".into()],
                env: vec![],
                working_dir: dir.to_path_buf(),
                log_path: dir.join(format!("{name}.log")),
            },
        }
    }

    fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_killed_member_is_started_again_and_stopping_stops_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let set = MemberSet {
            members: vec![sleeper(dir.path(), "a"), sleeper(dir.path(), "b")],
        };
        let stop = Arc::new(AtomicBool::new(false));
        let supervisor = {
            let (set, dir, stop) = (set.clone(), dir.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || supervise(&set, &dir, &stop))
        };
        let pids = || -> Vec<Option<u32>> {
            read_status(dir.path())
                .map(|s| s.iter().map(|m| m.pid).collect())
                .unwrap_or_default()
        };
        wait_for("both members", || pids().iter().flatten().count() == 2);
        let first = pids();
        let killed = first[1].unwrap() as i32;
        // SAFETY: a plain syscall on a process this test started.
        unsafe { libc::kill(killed, libc::SIGKILL) };
        wait_for("member b to start again", || {
            pids()[1].is_some_and(|pid| pid as i32 != killed)
        });
        let status = read_status(dir.path()).unwrap();
        assert_eq!(status[1].restarts, 1);
        assert_eq!(status[1].last_exit.as_deref(), Some("killed by SIGKILL"));
        assert_eq!((status[0].pid, status[0].restarts), (first[0], 0));

        let running: Vec<i32> = pids().iter().flatten().map(|&p| p as i32).collect();
        stop.store(true, Ordering::SeqCst);
        supervisor.join().unwrap().unwrap();
        assert!(
            running.iter().all(|&pid| !alive(pid)),
            "members left running"
        );
        assert_eq!(pids(), vec![None, None]);
    }
}
