//! Launching `weir` commands on behalf of the web UI, as processes of their own (a new
//! session): a run or a service keeps going if `weir serve` stops or restarts, and its state
//! lives in the store, so a restarted server lists it and can still approve it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Starts `weir ARGS...` detached, its output appended to `log`.
pub fn spawn_detached(
    weir_exe: &Path,
    home: &Path,
    args: &[String],
    log: &PathBuf,
) -> std::io::Result<u32> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let out = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)?;
    let mut command = Command::new(weir_exe);
    command
        .args(args)
        .env("WEIR_HOME", home)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: setsid is async-signal-safe and runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let pid = child.id();
    // Reap it when it ends so that it leaves no zombie behind while the server runs.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(pid)
}
