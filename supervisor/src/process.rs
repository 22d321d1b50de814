//! A local service process that is always cleaned up.
//!
//! Each service runs in a process group of its own, so stopping it reaches every process it
//! started. Stopping is graceful first (SIGTERM), then forceful (SIGKILL). A handle dropped
//! while its process runs stops it, so a panicking test does not leak a broker.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_catalog::local::ProcessSpec;

/// Errors starting or stopping a process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot open log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// Whether the process should die with the thread that started it (Linux `PR_SET_PDEATHSIG`).
/// Tests want this: a test binary that exits leaves no broker behind. Services started by
/// `weir up` must outlive the command and do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    DiesWithParent,
    Detached,
    /// One of several processes making one service (a cluster's brokers): it stays in its
    /// parent's process group, so that stopping the parent's group stops every member at once,
    /// and dies with its parent.
    Member,
}

/// A running (or finished) service process.
#[derive(Debug)]
pub struct ManagedProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    stopped: bool,
}

impl ManagedProcess {
    pub fn spawn(name: &str, spec: &ProcessSpec, lifetime: Lifetime) -> Result<Self, ProcessError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|source| ProcessError::Log {
                path: spec.log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| ProcessError::Log {
            path: spec.log_path.clone(),
            source,
        })?;
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.working_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let die_with_parent = lifetime != Lifetime::Detached;
        let own_group = lifetime != Lifetime::Member;
        // SAFETY: only async-signal-safe calls (setpgid, prctl) run between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if own_group && libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            program: spec.program.display().to_string(),
            source,
        })?;
        tracing::debug!(name, pid = child.id(), log = %spec.log_path.display(), "started");
        Ok(Self {
            name: name.to_string(),
            child,
            log_path: spec.log_path.clone(),
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How the process ended ("killed by SIGKILL", "exited with status 1"); `None` while it
    /// runs.
    pub fn exit_description(&mut self) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        let status = self.child.try_wait().ok()??;
        Some(match status.signal() {
            Some(signal) => format!("killed by {}", signal_name(signal)),
            None => format!("exited with status {}", status.code().unwrap_or(-1)),
        })
    }

    /// The last `lines` lines of the process's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// Stops the whole process group (a member: the process alone): SIGTERM, then SIGKILL
    /// after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        stop_group(self.child.id() as i32, grace);
        // Reap the child so no zombie stays behind.
        let _ = self.child.wait();
    }

    /// Leaves the process running after this handle is dropped (for `weir up`).
    pub fn detach(mut self) -> u32 {
        self.stopped = true;
        self.child.id()
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Stops the process group led by `pid` (which need not be our child): SIGTERM, wait up to
/// `grace` for every member to go, then SIGKILL. Returns true when a process was found.
pub fn stop_group(pid: i32, grace: Duration) -> bool {
    if pid <= 0 || (!alive(pid) && group_members(pid).is_empty()) {
        return false;
    }
    signal_group(pid, libc::SIGTERM);
    if !wait_for_group_exit(pid, grace) {
        signal_group(pid, libc::SIGKILL);
        wait_for_group_exit(pid, Duration::from_secs(5));
    }
    true
}

fn signal_group(pid: i32, signal: i32) {
    // SAFETY: plain syscalls with no memory arguments.
    unsafe {
        libc::kill(-pid, signal);
        libc::kill(pid, signal);
    }
}

fn wait_for_group_exit(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !alive(pid) && group_members(pid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The live (non-zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            read_stat(pid)
                .is_some_and(|(state, group)| group == pgid && state != 'Z' && state != 'X')
        })
        .collect()
}

/// `/proc/PID/stat` of a process, `None` once it is gone.
fn stat(pid: i32) -> Option<procfs::process::Stat> {
    procfs::process::Process::new(pid).ok()?.stat().ok()
}

/// State letter and process group of a process.
fn read_stat(pid: i32) -> Option<(char, i32)> {
    stat(pid).map(|stat| (stat.state, stat.pgrp))
}

/// When the process started, in clock ticks since boot. With the pid it identifies a
/// process for good: a pid reused later has another start time.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|stat| stat.starttime)
}

/// True when the process `pid` is alive and is the one that started at `started`.
pub fn is_same_process(pid: i32, started: Option<u64>) -> bool {
    alive(pid) && (started.is_none() || start_time(pid) == started)
}

/// How a child of this process that has ended did so ("killed by SIGKILL", "exited with
/// status 1"), reaping it; `None` while it runs or when it is not a child of this process.
///
/// Several threads of one process may look at the same dead child (a run's supervision and
/// a data step both list instances); whichever reaps it first keeps how it ended, and the
/// others are told the same.
pub fn reap(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    // Held across the reaping, so that a thread that finds the child reaped already always
    // finds how it ended recorded: between another thread's waitpid and its record it would
    // find neither.
    let mut ended = REAPED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut status = 0;
    // A killed process with many threads (a JVM) shows as a zombie as soon as its main
    // thread has exited, but can be waited for only once every thread has: it is given that
    // long (milliseconds, bounded here) instead of being reported gone without its exit.
    let mut reaped = 0;
    for _ in 0..REAP_TRIES {
        // SAFETY: waitpid writes only to `status`; WNOHANG never blocks.
        reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped != 0 {
            break;
        }
        std::thread::sleep(REAP_PAUSE);
    }
    if reaped != pid {
        // -1: not a child, or reaped already (by another thread of this process).
        return (reaped == -1).then(|| ended.get(&pid).cloned()).flatten();
    }
    let how = if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        format!("killed by {}", signal_name(signal))
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    };
    ended.insert(pid, how.clone());
    Some(how)
}

/// How often, and how far apart, a dying child's exit is asked for before giving up.
const REAP_TRIES: u32 = 200;
const REAP_PAUSE: Duration = Duration::from_millis(5);

/// How the children this process reaped ended, by pid.
static REAPED: std::sync::Mutex<std::collections::BTreeMap<i32, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        other => format!("signal {other}"),
    }
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    pid > 0 && read_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// The last `lines` lines of a log file (at most 64 KiB are read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let mut text = String::new();
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    text.push_str(&String::from_utf8_lossy(&bytes));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path) -> ProcessSpec {
        ProcessSpec {
            program: "sh".into(),
            // The child ignores SIGTERM so that the forceful path is exercised too.
            args: vec![
                "-c".into(),
                "echo started; trap '' TERM; sleep 30 & wait".into(),
            ],
            env: vec![],
            working_dir: dir.to_path_buf(),
            log_path: dir.join("out.log"),
        }
    }

    #[test]
    fn stop_kills_the_whole_group_and_keeps_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut process =
            ManagedProcess::spawn("s", &sleeper(dir.path()), Lifetime::Detached).unwrap();
        let pid = process.pid() as i32;
        std::thread::sleep(Duration::from_millis(300));
        assert!(process.is_running());
        assert!(alive(pid));
        let started = start_time(pid);
        assert!(started.is_some());
        assert!(is_same_process(pid, started));
        assert!(
            !is_same_process(pid, started.map(|t| t + 1)),
            "another start time is another process"
        );
        process.stop(Duration::from_millis(300));
        assert!(!alive(pid));
        // The `sleep` grandchild was in the same group and went too.
        assert_eq!(group_members(pid), Vec::<i32>::new(), "group members left");
        assert_eq!(log_tail(&dir.path().join("out.log"), 5), "started");
    }

    #[test]
    fn dropping_the_handle_stops_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sleeper(dir.path());
        spec.args = vec!["-c".into(), "exec sleep 30".into()];
        let process = ManagedProcess::spawn("s", &spec, Lifetime::DiesWithParent).unwrap();
        let pid = process.pid() as i32;
        drop(process);
        assert!(!alive(pid));
    }

    #[test]
    fn spawn_failure_names_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sleeper(dir.path());
        spec.program = "/nonexistent/weir-test-binary".into();
        let err = ManagedProcess::spawn("s", &spec, Lifetime::Detached).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/weir-test-binary"),
            "{err}"
        );
    }
}
