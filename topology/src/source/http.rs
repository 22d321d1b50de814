//! The live source: fetch a URL every interval and publish each response body.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::{DocumentKey, Pipelined, Publisher, SourceError};
use weir_contracts::status::{SourceState, SourceStatus};

/// How to poll.
#[derive(Debug, Clone)]
pub struct PollConfig {
    pub url: String,
    pub interval: Duration,
    /// Per-request time limit.
    pub timeout: Duration,
    /// Longest wait between retries of a failing source.
    pub max_backoff: Duration,
    /// Stop after publishing this many documents.
    pub max_documents: Option<u64>,
    /// How each document is keyed.
    pub key: DocumentKey,
}

/// Polls until `shutdown` resolves or `max_documents` are published; `status` follows what
/// it does.
pub async fn poll(
    config: &PollConfig,
    publisher: &Publisher,
    status: &watch::Sender<SourceStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SourceError> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(SourceError::Client)?;
    // One document per interval: each is acknowledged before the next fetch.
    let mut sent = Pipelined::new(publisher, 1);
    let mut published = 0u64;
    let mut backoff = Backoff::new(config.interval, config.max_backoff);
    tokio::pin!(shutdown);
    loop {
        if config.max_documents.is_some_and(|max| published >= max) {
            status.send_modify(|s| s.state = SourceState::Finished);
            return Ok(());
        }
        let wait = match fetch(&client, &config.url).await {
            Ok(body) => {
                let key = config.key.key_or_warn(&body);
                sent.send(status, key.as_deref(), &body, None).await?;
                sent.finish(status).await?;
                published = sent.acknowledged();
                if backoff.failing() {
                    tracing::info!(url = %config.url, "source reachable again");
                }
                status.send_modify(|s| {
                    s.published = published;
                    s.state = SourceState::Publishing;
                });
                tracing::debug!(url = %config.url, bytes = body.len(), published, "document published");
                backoff.succeeded()
            }
            Err(reason) => {
                let wait = backoff.failed();
                tracing::warn!(
                    url = %config.url,
                    attempt = backoff.consecutive_failures(),
                    "source unreachable: {reason}; retrying in {wait:?} (no data is published meanwhile)"
                );
                status.send_modify(|s| {
                    s.failed_attempts += 1;
                    s.state = SourceState::Retrying;
                    s.last_error = Some(reason.to_string());
                });
                wait
            }
        };
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Why one poll published nothing.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    /// No answer: connection refused, timeout, TLS… (with every cause in the message).
    #[error("{}", describe(.0))]
    Request(#[from] reqwest::Error),
    #[error("HTTP {status} from {url}")]
    Status {
        status: reqwest::StatusCode,
        url: String,
    },
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, FetchError> {
    let response = client.get(url).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            status,
            url: url.to_string(),
        });
    }
    Ok(response.bytes().await?.to_vec())
}

/// A request error with the chain of its causes, which reqwest's own message leaves out.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Exponential backoff between retries, back to the normal interval after a success.
#[derive(Debug)]
pub struct Backoff {
    interval: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(interval: Duration, max: Duration) -> Self {
        Self {
            interval,
            max: max.max(interval),
            failures: 0,
        }
    }

    pub fn succeeded(&mut self) -> Duration {
        self.failures = 0;
        self.interval
    }

    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(self.failures.min(16));
        (self.interval.max(Duration::from_millis(100)) * factor).min(self.max)
    }

    pub fn failing(&self) -> bool {
        self.failures > 0
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (0..5).map(|_| b.failed().as_secs()).collect();
        assert_eq!(waits, vec![2, 4, 8, 10, 10]);
        assert_eq!(b.succeeded(), Duration::from_secs(1));
        assert!(!b.failing());
    }
}
