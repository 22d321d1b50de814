//! Runs and their tasks in the store: what `weir runs`, `weir approve` and the engine share.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::store::{parsed_column, Store, StoreError, UnknownState};
use crate::time::{now_unix, rfc3339};

/// The states of a run, as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
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
        self.into()
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

impl std::str::FromStr for RunState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, UnknownState> {
        UnknownState::parse("run", text)
    }
}

/// The states of a task of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum TaskState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Its `when` was false.
    Skipped,
    /// The run stopped before it ran or while it ran.
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for TaskState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, UnknownState> {
        UnknownState::parse("task", text)
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
    /// The question of the oldest unanswered approval (see `approvals` for all of them).
    pub approval_message: Option<String>,
    /// Every unanswered approval: two parallel branches may each wait for one.
    pub approvals: Vec<PendingApproval>,
    /// Why its backend could not show what the workloads did (kwok nodes); such a run may
    /// succeed with results unavailable.
    pub simulated: Option<String>,
    /// What supervision saw happen to the run's instances, oldest first.
    pub events: Vec<RunEvent>,
    /// Where it ran: `local` or `kubernetes`.
    pub backend: String,
    /// Its Kubernetes namespace.
    pub namespace: Option<String>,
    pub artifacts: String,
    #[serde(skip)]
    pub owner_pid: Option<i32>,
    #[serde(skip)]
    pub owner_start_time: Option<u64>,
}

/// Something that happened to one of a run's instances while it ran (it died, it was
/// restarted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunEvent {
    /// RFC 3339.
    pub at: String,
    pub instance: String,
    pub what: String,
}

/// A task of a run.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRecord {
    pub name: String,
    pub kind: String,
    pub state: TaskState,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub attempts: u32,
    pub error: Option<String>,
    pub depends: Vec<String>,
    /// The service instance it starts, whose log is its log.
    pub instance: Option<String>,
}

/// A run's columns with its unanswered approvals.
const RUN_COLUMNS: &str = "SELECT runs.*,
    (SELECT message FROM approvals a WHERE a.run_id = runs.id AND a.decision IS NULL
       ORDER BY requested_at, rowid LIMIT 1) AS approval_message,
    (SELECT json_group_array(json_object('task', task, 'message', message)) FROM
       (SELECT task, message FROM approvals a WHERE a.run_id = runs.id AND a.decision IS NULL
          ORDER BY requested_at, rowid)) AS approvals,
    (SELECT json_group_array(json_object('at', at, 'instance', instance, 'what', what)) FROM
       (SELECT at, instance, what FROM run_events e WHERE e.run_id = runs.id
          ORDER BY at, rowid)) AS events
    FROM runs";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let json = |column: &str| -> rusqlite::Result<serde_json::Value> {
        let text: String = row.get(column)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    Ok(RunRecord {
        id: row.get("id")?,
        workflow: row.get("workflow")?,
        file: row.get("file")?,
        state: parsed_column(row, "state")?,
        variables: json("variables")?,
        created: rfc3339(row.get("created_at")?),
        finished: row.get::<_, Option<i64>>("finished_at")?.map(rfc3339),
        error: row.get("error")?,
        topics: json("topics")?,
        unavailable: json("unavailable")?,
        approval_message: row.get("approval_message")?,
        approvals: json_list(row, "approvals")?,
        simulated: row.get("simulated")?,
        events: json_list::<StoredEvent>(row, "events")?
            .into_iter()
            .map(|e| RunEvent {
                at: rfc3339(e.at),
                instance: e.instance,
                what: e.what,
            })
            .collect(),
        backend: row.get("backend")?,
        namespace: row.get("namespace")?,
        artifacts: row.get("artifacts")?,
        owner_pid: row.get("owner_pid")?,
        owner_start_time: row
            .get::<_, Option<i64>>("owner_start_time")?
            .map(|t| t as u64),
    })
}

/// A column holding a JSON list of `T`.
fn json_list<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    column: &str,
) -> rusqlite::Result<Vec<T>> {
    serde_json::from_str(&row.get::<_, String>(column)?).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A row of `run_events` as the query returns it.
#[derive(serde::Deserialize)]
struct StoredEvent {
    at: i64,
    instance: String,
    what: String,
}

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let depends: String = row.get("depends")?;
    Ok(TaskRecord {
        name: row.get("name")?,
        kind: row.get("kind")?,
        state: parsed_column(row, "state")?,
        started: row.get::<_, Option<i64>>("started_at")?.map(rfc3339),
        finished: row.get::<_, Option<i64>>("finished_at")?.map(rfc3339),
        attempts: row.get("attempts")?,
        error: row.get("error")?,
        depends: serde_json::from_str(&depends).unwrap_or_default(),
        instance: row.get("instance")?,
    })
}

/// A run about to start.
#[derive(Debug)]
pub struct NewRun<'a> {
    pub id: &'a str,
    pub workflow: &'a str,
    pub file: &'a str,
    pub variables: &'a serde_json::Value,
    pub artifacts: &'a str,
    /// The `weir` process running it: pid and start time.
    pub owner: (i32, Option<u64>),
    pub backend: &'a str,
    pub namespace: Option<&'a str>,
    pub tasks: &'a [crate::workflow::Task],
}

/// What a person answered to a pending approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum Answer {
    Approved,
    Rejected,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An approval a run waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PendingApproval {
    pub task: String,
    pub message: String,
}

/// What answering an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The answer to this task's approval was recorded.
    Recorded(String),
    /// Nothing (or not that task) awaits an answer; these do.
    NotAwaiting(Vec<String>),
    /// Several approvals wait; say which task.
    Ambiguous(Vec<String>),
}

impl Store {
    /// Records a new run, `pending`, with its tasks, in one transaction: a reader sees the
    /// run with all its tasks or not at all.
    pub fn insert_run(&self, run: &NewRun<'_>) -> Result<(), StoreError> {
        let transaction = self.conn().unchecked_transaction()?;
        transaction.execute(
            "INSERT INTO runs (id, workflow, file, state, variables, created_at, artifacts,
                owner_pid, owner_start_time, backend, namespace)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                run.id,
                run.workflow,
                run.file,
                run.variables.to_string(),
                now_unix(),
                run.artifacts,
                run.owner.0,
                run.owner.1.map(|t| t as i64),
                run.backend,
                run.namespace
            ],
        )?;
        for (position, task) in run.tasks.iter().enumerate() {
            transaction.execute(
                "INSERT INTO tasks (run_id, position, name, kind, state, depends, instance) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)",
                params![run.id, position as i64, task.name, task.action.kind(), serde_json::to_string(&task.depends).expect("names serialize"), task.action.instance()],
            )?;
        }
        transaction.commit()?;
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

    /// Records that the run's backend only simulates its workloads, and why.
    pub fn set_run_simulated(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE runs SET simulated = ?2 WHERE id = ?1",
            params![id, reason],
        )?;
        Ok(())
    }

    /// Records what happened to one of the run's instances.
    pub fn add_run_event(&self, id: &str, instance: &str, what: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO run_events (run_id, at, instance, what) VALUES (?1, ?2, ?3, ?4)",
            params![id, now_unix(), instance, what],
        )?;
        Ok(())
    }

    /// Asks for a person's answer to `task`'s question; the run is `awaiting-approval` while
    /// any of its approvals is unanswered.
    pub fn request_approval(&self, id: &str, task: &str, message: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO approvals (run_id, task, message, requested_at, decision)
             VALUES (?1, ?2, ?3, ?4, NULL)",
            params![id, task, message, now_unix()],
        )?;
        self.conn().execute(
            "UPDATE runs SET state = 'awaiting-approval' WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    /// The run's unanswered approvals, oldest first.
    pub fn pending_approvals(&self, id: &str) -> Result<Vec<PendingApproval>, StoreError> {
        let mut statement = self.conn().prepare(
            "SELECT task, message FROM approvals WHERE run_id = ?1 AND decision IS NULL
             ORDER BY requested_at, rowid",
        )?;
        let rows = statement.query_map(params![id], |row| {
            Ok(PendingApproval {
                task: row.get(0)?,
                message: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a person's answer to the approval of `task`, or to the run's only pending
    /// approval when `task` is `None`.
    pub fn answer_approval(
        &self,
        id: &str,
        task: Option<&str>,
        answer: Answer,
    ) -> Result<Answered, StoreError> {
        let pending: Vec<String> = self
            .pending_approvals(id)?
            .into_iter()
            .map(|p| p.task)
            .collect();
        let target = match (task, pending.as_slice()) {
            (Some(task), _) if pending.iter().any(|p| p == task) => task.to_string(),
            (Some(_), _) | (None, []) => return Ok(Answered::NotAwaiting(pending)),
            (None, [only]) => only.clone(),
            (None, _) => return Ok(Answered::Ambiguous(pending)),
        };
        let changed = self.conn().execute(
            "UPDATE approvals SET decision = ?3 WHERE run_id = ?1 AND task = ?2 AND decision IS NULL",
            params![id, target, answer.as_str()],
        )?;
        Ok(if changed == 1 {
            Answered::Recorded(target)
        } else {
            Answered::NotAwaiting(pending)
        })
    }

    /// The answer given to `task`'s approval, if any.
    pub fn approval_answer(&self, id: &str, task: &str) -> Result<Option<Answer>, StoreError> {
        let decision: Option<String> = self
            .conn()
            .query_row(
                "SELECT decision FROM approvals WHERE run_id = ?1 AND task = ?2",
                params![id, task],
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

    /// Ends `task`'s approval; the run is `running` again once none is left.
    pub fn clear_approval(&self, id: &str, task: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM approvals WHERE run_id = ?1 AND task = ?2",
            params![id, task],
        )?;
        self.conn().execute(
            "UPDATE runs SET state = 'running' WHERE id = ?1 AND state = 'awaiting-approval'
               AND NOT EXISTS (SELECT 1 FROM approvals WHERE run_id = ?1 AND decision IS NULL)",
            params![id],
        )?;
        Ok(())
    }

    pub fn update_task(
        &self,
        run_id: &str,
        name: &str,
        state: TaskState,
        attempts: u32,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_unix();
        self.conn().execute(
            "UPDATE tasks SET state = ?3, attempts = ?4, error = ?5,
                started_at = CASE WHEN ?3 = 'running' AND started_at IS NULL THEN ?6 ELSE started_at END,
                finished_at = CASE WHEN ?3 IN ('succeeded', 'failed', 'skipped', 'cancelled') THEN ?6 ELSE finished_at END
             WHERE run_id = ?1 AND name = ?2",
            params![run_id, name, state.as_str(), attempts, error, now],
        )?;
        Ok(())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("{RUN_COLUMNS} WHERE id = ?1"),
                params![id],
                run_from_row,
            )
            .optional()?)
    }

    /// All runs, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut statement = self.conn().prepare(&format!(
            "{RUN_COLUMNS} ORDER BY created_at DESC, rowid DESC"
        ))?;
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
