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

use super::{DocumentKey, Publisher, SourceError, REPLAY_RESTART_HEADER};
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

/// Reads a recording into documents, refusing a malformed one with the line at fault.
pub fn load_recording(path: &Path) -> Result<Vec<String>, SourceError> {
    let error = |reason: String| SourceError::Recording {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let documents = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        csv_documents(&text).map_err(error)?
    } else {
        let mut documents = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            serde_json::from_str::<serde_json::Value>(line)
                .map_err(|e| error(format!("line {}: not a JSON document: {e}", index + 1)))?;
            documents.push(line.to_string());
        }
        documents
    };
    if documents.is_empty() {
        return Err(error("the recording holds no documents".into()));
    }
    Ok(documents)
}

fn csv_documents(text: &str) -> Result<Vec<String>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or("empty CSV file")?
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(index, name)| match name {
            "" => format!("column{}", index + 1),
            name => name.to_string(),
        })
        .collect();
    lines
        .enumerate()
        .map(|(index, line)| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != header.len() {
                return Err(format!(
                    "row {} has {} cells, the header has {}",
                    index + 2,
                    cells.len(),
                    header.len()
                ));
            }
            let object: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(cells)
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
    let mut published = 0u64;
    let passes = if config.repeat && !documents.is_empty() {
        u64::MAX
    } else {
        1
    };
    for pass in 1..=passes {
        let pass_text = pass.to_string();
        // The keys whose series this pass has begun.
        let mut begun: HashSet<Option<String>> = HashSet::new();
        for document in documents {
            if config.max_documents.is_some_and(|max| published >= max) {
                status.send_modify(|s| s.state = SourceState::Finished);
                return Ok(());
            }
            // In a pass after the first, a key's first document begins its series again.
            let key = config.key.key_or_warn(document.as_bytes());
            let first_of_key = begun.insert(key.clone());
            let mark =
                (pass > 1 && first_of_key).then_some((REPLAY_RESTART_HEADER, pass_text.as_str()));
            publisher
                .publish_watched(status, key.as_deref(), document.as_bytes(), mark)
                .await?;
            published += 1;
            status.send_modify(|s| s.published = published);
            if published.is_multiple_of(100) {
                tracing::info!("replayed {published} recorded documents");
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(config.interval) => {}
            }
        }
    }
    status.send_modify(|s| s.state = SourceState::Finished);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_objects() {
        let docs = csv_documents(",Close\n2012-01-31,5.55\n\n2012-02-29,4.99\n").unwrap();
        assert_eq!(
            docs,
            vec![
                r#"{"Close":"5.55","column1":"2012-01-31"}"#.to_string(),
                r#"{"Close":"4.99","column1":"2012-02-29"}"#.to_string(),
            ]
        );
        assert!(csv_documents("a,b\n1\n")
            .unwrap_err()
            .contains("row 2 has 1 cells"));
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
