//! Reading a local instance's log file, whole or only its last lines: a log that grew to
//! gigabytes over a long run is read from its end, a block at a time, not loaded whole to show
//! two hundred lines.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::LogSpan;

/// How much is read from the end at a time while looking for line starts.
const BLOCK: u64 = 64 * 1024;

/// The bytes of the log at `path` that `span` asks for.
pub fn read(path: &Path, span: LogSpan) -> std::io::Result<Vec<u8>> {
    match span {
        LogSpan::Whole => std::fs::read(path),
        LogSpan::Last(lines) => last_lines(&mut File::open(path)?, lines),
    }
}

/// The log at `path` and those of the processes beside it (`replica-0.log`… of a topology's
/// replicas, in the same instance directory, or `broker-1/kafka.log`… of a cluster's brokers,
/// one directory down), each named by its path in the instance directory and read as `span` asks:
/// the instance's own log first, then the others by name. A member's log that is not there
/// (it was never started) is left out; the instance's own log must be there.
pub fn read_instance(path: &Path, span: LogSpan) -> std::io::Result<Vec<(String, String)>> {
    let text = |path: &Path| -> std::io::Result<String> {
        Ok(String::from_utf8_lossy(&read(path, span)?).into_owned())
    };
    let file_name = |path: &Path| {
        (path.file_name()).map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let mut parts = vec![(file_name(path), text(path)?)];
    let Some(dir) = path.parent() else {
        return Ok(parts);
    };
    let mut members: Vec<_> = logs_in(dir).into_iter().filter(|m| m != path).collect();
    // A member with a directory of its own (a broker's `broker-1/kafka.log`).
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            members.extend(logs_in(&entry.path()));
        }
    }
    members.sort();
    for member in members {
        if let Ok(log) = text(&member) {
            let name = member.strip_prefix(dir).unwrap_or(&member);
            parts.push((name.display().to_string(), log));
        }
    }
    // A supervisor that logged nothing is not worth a heading of its own.
    if parts.len() > 1 && parts[0].1.is_empty() {
        parts.remove(0);
    }
    Ok(parts)
}

/// The `*.log` files directly in `dir`.
fn logs_in(dir: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => (entries.flatten().map(|entry| entry.path()))
            .filter(|file| file.is_file() && file.extension().is_some_and(|e| e == "log"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The last `count` lines of `file` (a final line without a newline counts as a line).
fn last_lines(file: &mut File, count: usize) -> std::io::Result<Vec<u8>> {
    let len = file.seek(SeekFrom::End(0))?;
    if count == 0 || len == 0 {
        return Ok(Vec::new());
    }
    // The last line ends at a newline or at the end of the file: counted as if it ended with
    // one, the line before the `count` last lines ends at newline `count + 1` from the end.
    let mut seen = 0;
    let mut tail: Vec<u8> = Vec::new();
    let mut start = len;
    while start > 0 {
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        if start == len && block.last() != Some(&b'\n') {
            seen += 1;
        }
        // Only the block just read is new to look at.
        let found = block.iter().rposition(|&byte| {
            seen += usize::from(byte == b'\n');
            seen == count + 1
        });
        block.extend_from_slice(&tail);
        tail = block;
        start = from;
        if let Some(index) = found {
            return Ok(tail.split_off(index + 1));
        }
    }
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(text: &str, count: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, text).unwrap();
        String::from_utf8(read(&path, LogSpan::Last(count)).unwrap()).unwrap()
    }

    #[test]
    fn the_last_lines_are_read_with_or_without_a_final_newline() {
        assert_eq!(tail_of("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_of("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_of("a\nb\n", 5), "a\nb\n");
        assert_eq!(tail_of("a\n", 0), "");
        assert_eq!(tail_of("", 3), "");
    }

    #[test]
    fn lines_across_many_blocks_come_back_whole() {
        let lines: Vec<String> = (0..40_000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 50)))
            .collect();
        let text = lines.join("\n") + "\n";
        let tail = tail_of(&text, 3_000);
        let expected = lines[37_000..].join("\n") + "\n";
        assert_eq!(tail, expected);
    }

    #[test]
    fn an_instance_log_holds_each_replica_and_each_broker_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("kafka.log", "member broker-1 killed by SIGKILL\n");
        write("broker-0/kafka.log", "started (kafka.server.KafkaServer)\n");
        write("broker-1/kafka.log", "NodeExistsException\n");
        // A partition's segment two directories down is data, not a log to show.
        write("broker-1/data/t-0/00000000000000000000.log", "binary");
        write("replica-0.log", "0 records in\n");
        let parts = read_instance(&dir.path().join("kafka.log"), LogSpan::Last(10)).unwrap();
        let names: Vec<&str> = parts.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kafka.log",
                "broker-0/kafka.log",
                "broker-1/kafka.log",
                "replica-0.log"
            ]
        );
        assert_eq!(parts[2].1, "NodeExistsException\n");
    }
}
