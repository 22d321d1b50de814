//! Runs and their tasks in the store: what `weir runs`, `weir approve` and the engine share.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::store::{Store, StoreError};
use crate::time::{now_unix, rfc3339};

/// The states of a run, as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Pending,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Running => "running",
            RunState::AwaitingApproval => "awaiting-approval",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "running" => RunState::Running,
            "awaiting-approval" => RunState::AwaitingApproval,
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            "cancelled" => RunState::Cancelled,
            _ => RunState::Pending,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

/// A run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub workflow: String,
    pub file: String,
    pub state: RunState,
    pub variables: serde_json::Value,
    pub created: String,
    pub finished: Option<String>,
    pub error: Option<String>,
    /// Topic → number of messages, read before teardown.
    pub topics: serde_json::Value,
    /// Results that could not be gathered, with the reason.
    pub unavailable: serde_json::Value,
    pub approval_message: Option<String>,
    pub artifacts: String,
    #[serde(skip)]
    pub owner_pid: Option<i32>,
    #[serde(skip)]
    pub owner_start_time: Option<u64>,
}

/// A task of a run.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRecord {
    pub name: String,
    pub kind: String,
    /// `pending`, `running`, `succeeded`, `failed`, `skipped`, `cancelled`.
    pub state: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub attempts: u32,
    pub error: Option<String>,
    pub depends: Vec<String>,
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let json = |column: &str| -> rusqlite::Result<serde_json::Value> {
        let text: String = row.get(column)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    Ok(RunRecord {
        id: row.get("id")?,
        workflow: row.get("workflow")?,
        file: row.get("file")?,
        state: RunState::parse(&row.get::<_, String>("state")?),
        variables: json("variables")?,
        created: rfc3339(row.get("created_at")?),
        finished: row.get::<_, Option<i64>>("finished_at")?.map(rfc3339),
        error: row.get("error")?,
        topics: json("topics")?,
        unavailable: json("unavailable")?,
        approval_message: row.get("approval_message")?,
        artifacts: row.get("artifacts")?,
        owner_pid: row.get("owner_pid")?,
        owner_start_time: row
            .get::<_, Option<i64>>("owner_start_time")?
            .map(|t| t as u64),
    })
}

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let depends: String = row.get("depends")?;
    Ok(TaskRecord {
        name: row.get("name")?,
        kind: row.get("kind")?,
        state: row.get("state")?,
        started: row.get::<_, Option<i64>>("started_at")?.map(rfc3339),
        finished: row.get::<_, Option<i64>>("finished_at")?.map(rfc3339),
        attempts: row.get("attempts")?,
        error: row.get("error")?,
        depends: serde_json::from_str(&depends).unwrap_or_default(),
    })
}

/// What a person answered to a pending approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Approved,
    Rejected,
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub fn insert_run(
        &self,
        id: &str,
        workflow: &str,
        file: &str,
        variables: &serde_json::Value,
        artifacts: &str,
        owner: (i32, Option<u64>),
        tasks: &[(String, String, Vec<String>)],
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO runs (id, workflow, file, state, variables, created_at, artifacts, owner_pid, owner_start_time)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8)",
            params![id, workflow, file, variables.to_string(), now_unix(), artifacts, owner.0, owner.1.map(|t| t as i64)],
        )?;
        for (position, (name, kind, depends)) in tasks.iter().enumerate() {
            self.conn().execute(
                "INSERT INTO tasks (run_id, position, name, kind, state, depends) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                params![id, position as i64, name, kind, serde_json::to_string(depends).expect("names serialize")],
            )?;
        }
        Ok(())
    }

    pub fn set_run_state(
        &self,
        id: &str,
        state: RunState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let finished = state.is_final().then(now_unix);
        self.conn().execute(
            "UPDATE runs SET state = ?2, error = COALESCE(?3, error), finished_at = COALESCE(?4, finished_at) WHERE id = ?1",
            params![id, state.as_str(), error, finished],
        )?;
        Ok(())
    }

    pub fn set_run_results(
        &self,
        id: &str,
        topics: &serde_json::Value,
        unavailable: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE runs SET topics = ?2, unavailable = ?3 WHERE id = ?1",
            params![id, topics.to_string(), unavailable.to_string()],
        )?;
        Ok(())
    }

    /// Puts the run in `awaiting-approval` with a message, clearing any earlier answer.
    pub fn request_approval(&self, id: &str, message: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE runs SET state = 'awaiting-approval', approval_message = ?2, decision = NULL WHERE id = ?1",
            params![id, message],
        )?;
        Ok(())
    }

    /// Records a person's answer; `Ok(false)` when the run is not awaiting approval.
    pub fn answer_approval(&self, id: &str, answer: Answer) -> Result<bool, StoreError> {
        let decision = match answer {
            Answer::Approved => "approved",
            Answer::Rejected => "rejected",
        };
        let changed = self.conn().execute(
            "UPDATE runs SET decision = ?2 WHERE id = ?1 AND state = 'awaiting-approval' AND decision IS NULL",
            params![id, decision],
        )?;
        Ok(changed == 1)
    }

    /// The answer given to the pending approval, if any.
    pub fn approval_answer(&self, id: &str) -> Result<Option<Answer>, StoreError> {
        let decision: Option<String> = self
            .conn()
            .query_row(
                "SELECT decision FROM runs WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(match decision.as_deref() {
            Some("approved") => Some(Answer::Approved),
            Some("rejected") => Some(Answer::Rejected),
            _ => None,
        })
    }

    pub fn clear_approval(&self, id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE runs SET state = 'running', approval_message = NULL, decision = NULL WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    pub fn update_task(
        &self,
        run_id: &str,
        name: &str,
        state: &str,
        attempts: u32,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_unix();
        self.conn().execute(
            "UPDATE tasks SET state = ?3, attempts = ?4, error = ?5,
                started_at = CASE WHEN ?3 = 'running' AND started_at IS NULL THEN ?6 ELSE started_at END,
                finished_at = CASE WHEN ?3 IN ('succeeded', 'failed', 'skipped', 'cancelled') THEN ?6 ELSE finished_at END
             WHERE run_id = ?1 AND name = ?2",
            params![run_id, name, state, attempts, error, now],
        )?;
        Ok(())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT * FROM runs WHERE id = ?1",
                params![id],
                run_from_row,
            )
            .optional()?)
    }

    /// All runs, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut statement = self
            .conn()
            .prepare("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC")?;
        let rows = statement.query_map([], run_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn tasks(&self, run_id: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let mut statement = self
            .conn()
            .prepare("SELECT * FROM tasks WHERE run_id = ?1 ORDER BY position")?;
        let rows = statement.query_map(params![run_id], task_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
