//! The replay source: publish recorded documents at a chosen pace. Every message carries a
//! `weir-replay` header naming the recording, and the log says it is a replay, so recorded data
//! is never mistaken for live data.
//!
//! Recordings are JSON Lines (one document per line) or CSV with a header row, each row
//! becoming a JSON object keyed by column name with the cells as strings.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use super::{DocumentKey, Pipelined, Publisher, SourceError, REPLAY_RESTART_HEADER};
use weir_contracts::status::{SourceState, SourceStatus};

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Pause between two documents.
    pub interval: Duration,
    /// Start again from the first document after the last one.
    pub repeat: bool,
    /// Stop after publishing this many documents.
    pub max_documents: Option<u64>,
    /// How each document is keyed.
    pub key: DocumentKey,
}

/// Why a recording cannot be replayed (the message follows "cannot read recorded documents
/// from PATH").
#[derive(Debug, thiserror::Error)]
pub enum RecordingProblem {
    #[error("{0}")]
    Unreadable(#[from] std::io::Error),
    #[error("line {line}: not a JSON document: {source}")]
    NotJson {
        line: usize,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error("the recording holds no documents")]
    Empty,
}

/// Reads a recording into documents, refusing a malformed one with the line at fault.
pub fn load_recording(path: &Path) -> Result<Vec<String>, SourceError> {
    let documents = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        std::fs::File::open(path)
            .map_err(RecordingProblem::from)
            .and_then(csv_documents)
    } else {
        std::fs::read_to_string(path)
            .map_err(RecordingProblem::from)
            .and_then(|text| json_lines(&text))
    };
    match documents {
        Ok(documents) if documents.is_empty() => Err(RecordingProblem::Empty),
        other => other,
    }
    .map_err(|reason| SourceError::Recording {
        path: path.display().to_string(),
        reason,
    })
}

/// One document per non-blank line, each checked to be JSON.
fn json_lines(text: &str) -> Result<Vec<String>, RecordingProblem> {
    let mut documents = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        serde_json::from_str::<serde_json::Value>(line).map_err(|source| {
            RecordingProblem::NotJson {
                line: index + 1,
                source,
            }
        })?;
        documents.push(line.to_string());
    }
    Ok(documents)
}

/// Each row of a CSV file with a header row as a JSON object of strings keyed by column name
/// (an unnamed column is `columnN`); quoted cells may hold commas and line breaks.
fn csv_documents(reader: impl std::io::Read) -> Result<Vec<String>, RecordingProblem> {
    let mut rows = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header: Vec<String> = rows
        .headers()?
        .iter()
        .enumerate()
        .map(|(index, name)| match name {
            "" => format!("column{}", index + 1),
            name => name.to_string(),
        })
        .collect();
    rows.records()
        .map(|row| {
            let object: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(row?.iter())
                .map(|(name, cell)| (name.clone(), serde_json::Value::from(cell)))
                .collect();
            Ok(serde_json::Value::Object(object).to_string())
        })
        .collect()
}

/// Publishes `documents` in order until done, `max_documents` is reached or `shutdown`;
/// `status` counts what was published.
pub async fn replay(
    documents: &[String],
    config: &ReplayConfig,
    publisher: &Publisher,
    status: &watch::Sender<SourceStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SourceError> {
    tokio::pin!(shutdown);
    let mut sending = Pipelined::new(publisher, UNACKNOWLEDGED_LIMIT);
    let mut sent = 0u64;
    let passes = if config.repeat && !documents.is_empty() {
        u64::MAX
    } else {
        1
    };
    'passes: for pass in 1..=passes {
        let pass_text = pass.to_string();
        // The keys whose series this pass has begun.
        let mut begun: HashSet<Option<String>> = HashSet::new();
        for document in documents {
            if config.max_documents.is_some_and(|max| sent >= max) {
                break 'passes;
            }
            // In a pass after the first, a key's first document begins its series again.
            let key = config.key.key_or_warn(document.as_bytes());
            let first_of_key = begun.insert(key.clone());
            let mark =
                (pass > 1 && first_of_key).then_some((REPLAY_RESTART_HEADER, pass_text.as_str()));
            (sending.send(status, key.as_deref(), document.as_bytes(), mark)).await?;
            sent += 1;
            if sent.is_multiple_of(100) {
                let acknowledged = sending.acknowledged();
                tracing::info!("replayed {sent} recorded documents ({acknowledged} acknowledged)");
            }
            tokio::select! {
                _ = &mut shutdown => return stop(&mut sending, status).await,
                _ = tokio::time::sleep(config.interval) => sending.take_finished(status)?,
            }
        }
    }
    sending.finish(status).await?;
    status.send_modify(|s| s.state = SourceState::Finished);
    Ok(())
}

/// Documents sent and not yet acknowledged, at most: enough to keep the brokers busy at any
/// pace, few enough that a replay stopped while Kafka is away has little outstanding.
const UNACKNOWLEDGED_LIMIT: usize = 1_000;

/// How long a stopped replay waits for the acknowledgements still outstanding.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Stops a replay: what was sent is given [`STOP_GRACE`] to be acknowledged; what is not
/// by then is said, and not counted as published.
async fn stop(
    sending: &mut Pipelined<'_>,
    status: &watch::Sender<SourceStatus>,
) -> Result<(), SourceError> {
    match tokio::time::timeout(STOP_GRACE, sending.finish(status)).await {
        Ok(finished) => finished,
        Err(_) => {
            let outstanding = sending.unacknowledged();
            tracing::warn!(
                "stopped with {outstanding} documents sent but not acknowledged by Kafka within {STOP_GRACE:?}; they are not counted as published"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_objects() {
        let docs =
            csv_documents(",Close\n2012-01-31,5.55\n\n2012-02-29,4.99\n".as_bytes()).unwrap();
        assert_eq!(
            docs,
            vec![
                r#"{"Close":"5.55","column1":"2012-01-31"}"#.to_string(),
                r#"{"Close":"4.99","column1":"2012-02-29"}"#.to_string(),
            ]
        );
        let ragged = csv_documents("a,b\n1\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(ragged.contains("found record with 1 fields"), "{ragged}");
    }

    #[test]
    fn quoted_csv_cells_keep_their_commas() {
        let docs =
            csv_documents("name,note\n\"Smith, J.\",\"a \"\"quote\"\"\"\n".as_bytes()).unwrap();
        assert_eq!(
            docs,
            vec![r#"{"name":"Smith, J.","note":"a \"quote\""}"#.to_string()]
        );
    }

    #[test]
    fn malformed_json_lines_are_refused_with_line() {
        let dir = std::env::temp_dir().join(format!("weir-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        std::fs::write(&path, "{\"a\": 1}\n{oops\n").unwrap();
        let err = load_recording(&path).unwrap_err().to_string();
        assert!(err.contains("line 2: not a JSON document"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
