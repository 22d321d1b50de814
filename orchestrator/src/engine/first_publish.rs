//! A source is ready when it has published its first document, not when its process is up:
//! `start-source` waits for that, up to the task's `first_publish_within`. A source still
//! down by then is reported as such (a run event and a warning) and the run goes on; what it
//! brought over the whole run is judged when results are kept.

use std::time::{Duration, Instant};

use weir_contracts::status::{SourceState, SourceStatus};

use super::instance_status::{http_client, status_of, StatusError};
use super::{RunContext, TaskError};
use crate::runtime::{progress, whole_seconds};

/// How often the source's `/status` is read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// What the wait saw.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FirstPublish {
    /// The first document was acknowledged by Kafka.
    Published {
        after: Duration,
        failed_attempts: u64,
    },
    /// Nothing was published within the grace period.
    Down { last_error: Option<String> },
}

/// Waits until `instance` has published, it fails, or `within` passes.
pub(super) async fn await_first_publish(
    context: &RunContext,
    instance: &str,
    within: Duration,
) -> Result<(), TaskError> {
    if let Some(reason) = &context.simulation {
        return context.unseen(
            format!("first-publish:{instance}"),
            format!("the backend only simulates workloads ({reason})"),
        );
    }
    progress(format!(
        "  waiting up to {:?} for `{instance}` to publish its first document",
        whole_seconds(within)
    ));
    let client = http_client().map_err(|e| TaskError::Failed(e.to_string()))?;
    let started = Instant::now();
    let mut last: Option<SourceStatus> = None;
    // Why the status could not be read, while it never was.
    let mut unread: Option<StatusError> = None;
    loop {
        match status_of::<SourceStatus>(context, &client, instance).await {
            Ok(status) => last = Some(status),
            // A status that cannot be read this once keeps the last one seen.
            Err(error) if last.is_none() => unread = Some(error),
            Err(_) => {}
        }
        if let Some(seen) = judge(last.as_ref(), started.elapsed(), within)? {
            let unread = last.is_none().then(|| {
                unread
                    .as_ref()
                    .map_or("its status was never read".to_string(), |e| e.to_string())
            });
            report(context, instance, within, &seen, unread.as_ref());
            return Ok(());
        }
        context.sleep(POLL).await?;
    }
}

/// The outcome once there is one: `None` while the source may still publish in time.
fn judge(
    status: Option<&SourceStatus>,
    elapsed: Duration,
    within: Duration,
) -> Result<Option<FirstPublish>, TaskError> {
    match status {
        Some(status) if status.published > 0 => Ok(Some(FirstPublish::Published {
            after: elapsed,
            failed_attempts: status.failed_attempts,
        })),
        Some(status) if status.state == SourceState::Failed => Err(TaskError::Failed(format!(
            "the source failed before publishing anything: {}",
            status.last_error.as_deref().unwrap_or("no reason given")
        ))),
        _ if elapsed >= within => Ok(Some(FirstPublish::Down {
            last_error: status.and_then(|s| s.last_error.clone()),
        })),
        _ => Ok(None),
    }
}

fn report(
    context: &RunContext,
    instance: &str,
    within: Duration,
    seen: &FirstPublish,
    unread: Option<&String>,
) {
    match seen {
        FirstPublish::Published {
            after,
            failed_attempts: 0,
        } => progress(format!(
            "  `{instance}` published its first document after {:.1}s",
            after.as_secs_f64()
        )),
        FirstPublish::Published {
            after,
            failed_attempts,
        } => context.event(
            instance,
            &format!(
                "published its first document after {:.1}s, {failed_attempts} failed attempts \
                 before",
                after.as_secs_f64()
            ),
        ),
        FirstPublish::Down { last_error } => {
            let why = last_error
                .as_deref()
                .or(unread.map(String::as_str))
                .unwrap_or("no error reported yet");
            context.event(
                instance,
                &format!(
                    "DOWN: published nothing within {within:?} ({why}); the run goes on and \
                     reports what it brings"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(published: u64, state: SourceState) -> SourceStatus {
        let mut status = SourceStatus::new(true, "http://x", "t");
        status.published = published;
        status.state = state;
        status.failed_attempts = 2;
        status.last_error = Some("HTTP 503".into());
        status
    }

    #[test]
    fn a_source_is_ready_at_its_first_publish_and_down_after_the_grace_period() {
        let within = Duration::from_secs(5);
        let second = Duration::from_secs(1);
        let retrying = status(0, SourceState::Retrying);
        assert_eq!(judge(Some(&retrying), second, within).unwrap(), None);
        assert_eq!(judge(None, second, within).unwrap(), None);
        assert_eq!(
            judge(Some(&status(1, SourceState::Publishing)), second, within).unwrap(),
            Some(FirstPublish::Published {
                after: second,
                failed_attempts: 2
            })
        );
        assert_eq!(
            judge(Some(&retrying), within, within).unwrap(),
            Some(FirstPublish::Down {
                last_error: Some("HTTP 503".into())
            })
        );
        assert_eq!(
            judge(None, within, within).unwrap(),
            Some(FirstPublish::Down { last_error: None })
        );
        let failed = judge(Some(&status(0, SourceState::Failed)), second, within);
        assert!(
            matches!(&failed, Err(TaskError::Failed(why)) if why.contains("HTTP 503")),
            "{failed:?}"
        );
    }
}
