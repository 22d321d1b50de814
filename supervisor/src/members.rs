//! The members' supervisor, `weir members run SPEC`: several processes serving as one
//! instance (a Kafka cluster's brokers), kept the way a StatefulSet's controller keeps its
//! pods: every member is started; a member that dies is started again after a backoff that
//! grows while it keeps dying early; stopping the supervisor's process group stops every
//! member at once. It records each member's pid and restarts in
//! [`STATUS_FILE`](weir_catalog::local::members::STATUS_FILE) beside the spec.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_catalog::local::members::{Member, MemberSet, MemberStatus, STATUS_FILE};

use crate::process::{Lifetime, ManagedProcess, ProcessError};

/// A member that lived at least this long before dying starts again after the shortest
/// backoff; one that keeps dying sooner waits twice as long each time (up to 32 s).
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF_DOUBLINGS: u32 = 5;
/// How long stopping members may take gracefully (a broker's controlled shutdown) before
/// they are killed.
const STOP_GRACE: Duration = Duration::from_secs(25);

/// A member file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemberFileError {
    /// The file is missing or unreadable (no supervisor wrote it yet, or it is gone).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file holds something else than the renderer or the supervisor writes.
    #[error("{} is not a member file: {source}", path.display())]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, MemberFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| MemberFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| MemberFileError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Reads a spec file written by the renderer.
pub fn read_member_set(path: &Path) -> Result<MemberSet, MemberFileError> {
    read_json(path)
}

/// The members' status as the supervisor of the instance in `dir` last wrote it.
pub fn read_status(dir: &Path) -> Result<Vec<MemberStatus>, MemberFileError> {
    read_json(&dir.join(STATUS_FILE))
}

struct Slot {
    member: Member,
    process: Option<ManagedProcess>,
    started_at: Instant,
    restart_at: Option<Instant>,
    restarts: u32,
    early_deaths: u32,
    last_exit: Option<String>,
}

impl Slot {
    /// A member that was just started, or waits for its next attempt when it could not be.
    fn new(member: Member, process: Option<ManagedProcess>) -> Self {
        Slot {
            restart_at: process
                .is_none()
                .then(|| Instant::now() + FIRST_BACKOFF * 8),
            member,
            process,
            started_at: Instant::now(),
            restarts: 0,
            early_deaths: 0,
            last_exit: None,
        }
    }

    fn status(&self) -> MemberStatus {
        MemberStatus {
            name: self.member.name.clone(),
            endpoint: self.member.endpoint.clone(),
            pid: self.process.as_ref().map(ManagedProcess::pid),
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
        }
    }

    /// Notices a member that died and schedules its next start. True when it changed.
    fn notice_exit(&mut self) -> bool {
        let Some(how) = self
            .process
            .as_mut()
            .and_then(ManagedProcess::exit_description)
        else {
            return false;
        };
        let lived = self.started_at.elapsed();
        self.early_deaths = if lived < HEALTHY_AFTER {
            self.early_deaths + 1
        } else {
            0
        };
        let doubled = FIRST_BACKOFF
            * 2u32.pow(
                self.early_deaths
                    .saturating_sub(1)
                    .min(MAX_BACKOFF_DOUBLINGS),
            );
        let least = Duration::from_millis(self.member.restart_delay_ms.unwrap_or(0));
        let backoff = doubled.max(least);
        eprintln!(
            "member {} {how} after {:.1}s; starting it again in {}s",
            self.member.name,
            lived.as_secs_f64(),
            backoff.as_secs()
        );
        self.last_exit = Some(how);
        self.process = None;
        self.restart_at = Some(Instant::now() + backoff);
        true
    }

    /// Starts the member again once its backoff has passed. True when it changed.
    fn restart_when_due(&mut self) -> bool {
        if self.restart_at.is_none_or(|at| Instant::now() < at) {
            return false;
        }
        self.restart_at = None;
        match spawn(&self.member) {
            Ok(process) => {
                eprintln!(
                    "member {} started again (pid {})",
                    self.member.name,
                    process.pid()
                );
                self.process = Some(process);
                self.started_at = Instant::now();
                self.restarts += 1;
            }
            Err(error) => {
                eprintln!("member {} cannot start again: {error}", self.member.name);
                self.restart_at = Some(Instant::now() + FIRST_BACKOFF * 8);
            }
        }
        true
    }
}

/// Runs every member of `set` (read from `spec_path`) until `stop` is set, then stops them
/// all. When `reload` is set (SIGHUP), the spec is read again: members it no longer names are
/// stopped, members it adds are started, and members it still names keep running as they
/// are — the way `weir scale` changes a running instance's replicas. Fails only when a
/// member cannot be started at all at first (its program is missing, its log cannot be
/// opened).
pub fn supervise(
    set: MemberSet,
    spec_path: &Path,
    stop: &AtomicBool,
    reload: &AtomicBool,
) -> Result<(), ProcessError> {
    let status_path = spec_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(STATUS_FILE);
    let mut slots = Vec::with_capacity(set.members.len());
    for member in set.members {
        let process = spawn(&member)?;
        slots.push(Slot::new(member, Some(process)));
    }
    write_status(&status_path, &slots);
    while !stop.load(Ordering::SeqCst) {
        let mut changed = false;
        if reload.swap(false, Ordering::SeqCst) {
            match read_member_set(spec_path) {
                Ok(set) => slots = change_members(slots, set),
                Err(error) => tracing::warn!("keeping the members as they are: {error}"),
            }
            changed = true;
        }
        for slot in &mut slots {
            changed |= slot.notice_exit();
            changed |= slot.restart_when_due();
        }
        if changed {
            write_status(&status_path, &slots);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopping {} members", slots.len());
    let stopped = stop_all(slots);
    write_status(&status_path, &stopped);
    Ok(())
}

/// The members of `set`, in its order: those already running kept as they are, new ones
/// started; those `set` no longer names are stopped first.
fn change_members(slots: Vec<Slot>, set: MemberSet) -> Vec<Slot> {
    let (mut kept, removed): (Vec<Slot>, Vec<Slot>) = slots
        .into_iter()
        .partition(|slot| set.members.iter().any(|m| m.name == slot.member.name));
    if !removed.is_empty() {
        let names: Vec<&str> = removed.iter().map(|s| s.member.name.as_str()).collect();
        eprintln!("stopping members no longer wanted: {}", names.join(", "));
        stop_all(removed);
    }
    let mut slots = Vec::with_capacity(set.members.len());
    for member in set.members {
        match kept.iter().position(|slot| slot.member.name == member.name) {
            Some(index) => slots.push(kept.swap_remove(index)),
            None => {
                let process = match spawn(&member) {
                    Ok(process) => {
                        eprintln!("member {} started (pid {})", member.name, process.pid());
                        Some(process)
                    }
                    Err(error) => {
                        eprintln!("member {} cannot start: {error}", member.name);
                        None
                    }
                };
                slots.push(Slot::new(member, process));
            }
        }
    }
    slots
}

/// Stops the members' processes: all signalled at once (a cluster's brokers shut down
/// together rather than one after another), then each given the grace to finish.
fn stop_all(mut slots: Vec<Slot>) -> Vec<Slot> {
    for process in slots.iter().filter_map(|s| s.process.as_ref()) {
        // SAFETY: a plain syscall on our own child.
        unsafe { libc::kill(process.pid() as i32, libc::SIGTERM) };
    }
    for slot in &mut slots {
        if let Some(mut process) = slot.process.take() {
            process.stop(STOP_GRACE);
        }
        slot.restart_at = None;
    }
    slots
}

fn spawn(member: &Member) -> Result<ManagedProcess, ProcessError> {
    ManagedProcess::spawn(&member.name, &member.process, Lifetime::Member)
}

/// Written whole and renamed into place, so a reader never sees half a file.
fn write_status(path: &Path, slots: &[Slot]) {
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
    use weir_catalog::local::members::SPEC_FILE;
    use weir_catalog::local::ProcessSpec;

    use crate::process::alive;
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
            restart_delay_ms: None,
        }
    }

    fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes `set` as the spec in `dir` and supervises it on a thread; returns the spec's
    /// path, the stop and reload flags and the thread.
    fn supervising(dir: &Path, set: &MemberSet) -> Supervising {
        let spec = dir.join(SPEC_FILE);
        std::fs::write(&spec, serde_json::to_string(set).unwrap()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        let thread = {
            let (set, spec, stop, reload) =
                (set.clone(), spec.clone(), stop.clone(), reload.clone());
            std::thread::spawn(move || supervise(set, &spec, &stop, &reload))
        };
        Supervising {
            spec,
            stop,
            reload,
            thread,
        }
    }

    struct Supervising {
        spec: PathBuf,
        stop: Arc<AtomicBool>,
        reload: Arc<AtomicBool>,
        thread: std::thread::JoinHandle<Result<(), ProcessError>>,
    }

    fn pids(dir: &Path) -> Vec<Option<u32>> {
        read_status(dir)
            .map(|s| s.iter().map(|m| m.pid).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_killed_member_is_started_again_and_stopping_stops_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let set = MemberSet {
            members: vec![sleeper(dir.path(), "a"), sleeper(dir.path(), "b")],
        };
        let supervisor = supervising(dir.path(), &set);
        let pids = || pids(dir.path());
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
        supervisor.stop.store(true, Ordering::SeqCst);
        supervisor.thread.join().unwrap().unwrap();
        assert!(
            running.iter().all(|&pid| !alive(pid)),
            "members left running"
        );
        assert_eq!(pids(), vec![None, None]);
    }

    #[test]
    fn a_reloaded_spec_starts_new_members_stops_dropped_ones_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let one = MemberSet {
            members: vec![sleeper(dir.path(), "replica-0")],
        };
        let supervisor = supervising(dir.path(), &one);
        let pids = || pids(dir.path());
        wait_for("the first member", || pids().iter().flatten().count() == 1);
        let first = pids()[0].unwrap();

        let three = MemberSet {
            members: ["replica-0", "replica-1", "replica-2"]
                .map(|name| sleeper(dir.path(), name))
                .to_vec(),
        };
        std::fs::write(&supervisor.spec, serde_json::to_string(&three).unwrap()).unwrap();
        supervisor.reload.store(true, Ordering::SeqCst);
        wait_for("three members", || pids().iter().flatten().count() == 3);
        let grown = pids();
        assert_eq!(grown[0], Some(first), "replica-0 kept running as it was");
        let names: Vec<String> = (read_status(dir.path()).unwrap().into_iter())
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["replica-0", "replica-1", "replica-2"]);

        std::fs::write(&supervisor.spec, serde_json::to_string(&one).unwrap()).unwrap();
        supervisor.reload.store(true, Ordering::SeqCst);
        wait_for("one member again", || pids().len() == 1);
        assert_eq!(pids(), vec![Some(first)]);
        let dropped = [grown[1].unwrap() as i32, grown[2].unwrap() as i32];
        assert!(
            dropped.iter().all(|&pid| !alive(pid)),
            "dropped members stopped"
        );

        supervisor.stop.store(true, Ordering::SeqCst);
        supervisor.thread.join().unwrap().unwrap();
        assert!(!alive(first as i32));
    }
}
