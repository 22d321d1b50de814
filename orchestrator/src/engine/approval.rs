//! Asking a person: the run goes to `awaiting-approval` and waits for `weir approve` /
//! `weir reject` or the web UI — other processes, which answer through the store — or for
//! the approval's timeout and its declared outcome. The run's own timeout and interrupts
//! still hold while it waits.

use std::time::Duration;

use super::{progress, RunContext, TaskError};
use crate::runs::Answer;
use crate::workflow::Decision;

/// How often the store is read for an answer. Answers come from other processes, through
/// SQLite, which has no cross-process notification.
const ANSWER_POLL: Duration = Duration::from_millis(250);

fn failed(error: impl std::fmt::Display) -> TaskError {
    TaskError::Failed(error.to_string())
}

/// Waits for a person's answer to `task`'s question `message`, or for `timeout` and its
/// declared outcome. Each task has its own approval, so parallel ones do not interfere.
pub(super) async fn ask_person(
    context: &RunContext,
    task: &str,
    message: &str,
    timeout: Option<(Duration, Decision)>,
) -> Result<Answer, TaskError> {
    let store = context.store()?;
    store
        .request_approval(&context.id, task, message)
        .map_err(failed)?;
    let in_browser = super::web_ui_page(&context.id)
        .map(|page| format!("\n           or in the web UI: {page}"))
        .unwrap_or_default();
    progress(format!(
        "⏸ awaiting approval of `{task}`: {message}\n           approve: weir approve {id} --task {task}   reject: weir reject {id} --task {task}{in_browser}",
        id = context.id
    ));
    let expiry = async {
        match timeout {
            Some((limit, outcome)) => {
                tokio::time::sleep(limit).await;
                (limit, outcome)
            }
            None => std::future::pending().await,
        }
    };
    let mut expiry = std::pin::pin!(expiry);
    let answer = loop {
        if let Some(answer) = store.approval_answer(&context.id, task).map_err(failed)? {
            break answer;
        }
        tokio::select! {
            _ = tokio::time::sleep(ANSWER_POLL) => {}
            (limit, outcome) = &mut expiry => {
                progress(format!(
                    "  approval expired after {limit:?}; declared outcome: {}",
                    outcome.as_str()
                ));
                break match outcome {
                    Decision::Approve => Answer::Approved,
                    Decision::Reject => Answer::Rejected,
                };
            }
            _ = context.cancel.cancelled() => {
                context.record("the approval's end", store.clear_approval(&context.id, task));
                return Err(TaskError::Stopped);
            }
        }
    };
    store.clear_approval(&context.id, task).map_err(failed)?;
    progress(format!("  `{task}` {}", answer.as_str()));
    Ok(answer)
}
