//! One task of a workflow: its place in the graph, its retry policy and the one action it
//! performs. In the file the action is a key of the task (`provision: {...}`); in memory it is
//! one [`Action`], so a task can never hold two kinds or none.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    duration_text, Approval, Collect, CreateTopics, OnFailure, Provision, RestartPolicy,
    StartSource, SubmitTopology, Teardown, VerifyTable, Wait,
};

/// One task of the graph.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "TaskFile", rename_all = "kebab-case")]
pub struct Task {
    pub name: String,
    pub depends: Vec<String>,
    /// Run the task only when this is `true` after interpolation.
    #[serde(serialize_with = "weir_contracts::condition::serialize")]
    pub when: Option<bool>,
    /// Attempts after the first failure.
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    #[serde(serialize_with = "duration_text::serialize")]
    pub retry_delay: Option<Duration>,
    /// Time limit of one attempt.
    #[serde(serialize_with = "duration_text::serialize")]
    pub timeout: Option<Duration>,
    pub on_failure: OnFailure,
    /// What a death of an instance it started does (tasks that start instances only).
    pub restart: Option<RestartPolicy>,
    #[serde(flatten)]
    pub action: Action,
}

/// What a task does.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Start a catalog service instance, or reuse a running one of the same name.
    Provision(Provision),
    CreateTopics(CreateTopics),
    StartSource(StartSource),
    SubmitTopology(SubmitTopology),
    Wait(Wait),
    /// Wait for a person to approve or reject in the web UI (or `weir approve`).
    Approval(Approval),
    Collect(Collect),
    VerifyTable(VerifyTable),
    Teardown(Teardown),
}

impl Action {
    /// The kind's name as written in workflow files.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Provision(_) => "provision",
            Action::CreateTopics(_) => "create-topics",
            Action::StartSource(_) => "start-source",
            Action::SubmitTopology(_) => "submit-topology",
            Action::Wait(_) => "wait",
            Action::Approval(_) => "approval",
            Action::Collect(_) => "collect",
            Action::VerifyTable(_) => "verify-table",
            Action::Teardown(_) => "teardown",
        }
    }

    /// The service instance the task starts, whose log is the task's log.
    pub fn instance(&self) -> Option<&str> {
        match self {
            Action::Provision(provision) => Some(&provision.instance),
            Action::StartSource(source) => Some(&source.instance),
            Action::SubmitTopology(topology) => Some(&topology.instance),
            _ => None,
        }
    }
}

const KINDS: &str = "provision, create-topics, start-source, submit-topology, wait, approval, \
                     collect, verify-table, teardown";

/// A task as written: the action is one of several optional keys.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Task", transform = exactly_one_action)]
struct TaskFile {
    name: String,
    /// Tasks that must end before this one starts.
    #[serde(default)]
    depends: Vec<String>,
    /// Run the task only when this is `true` after interpolation (`!` negates), e.g.
    /// `when: "!${automatic_kill}"`.
    #[serde(default, with = "weir_contracts::condition")]
    #[schemars(with = "Option<Condition>")]
    when: Option<bool>,
    /// Attempts after the first failure.
    #[serde(default)]
    retries: u32,
    /// Pause before the first retry (e.g. `2s`); doubled for each further one.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "Option<weir_contracts::duration::DurationText>")]
    retry_delay: Option<Duration>,
    /// Time limit of one attempt (e.g. `90s`).
    #[serde(default, with = "duration_text")]
    #[schemars(with = "Option<weir_contracts::duration::DurationText>")]
    timeout: Option<Duration>,
    /// What a failure (after the retries) does to the run.
    #[serde(default)]
    on_failure: OnFailure,
    /// Start an instance this task started again when it dies during the run (e.g.
    /// `restart: { limit: 3, backoff: 2s }`); without it, its death fails the run.
    #[serde(default)]
    restart: Option<RestartPolicy>,

    provision: Option<Provision>,
    create_topics: Option<CreateTopics>,
    start_source: Option<StartSource>,
    submit_topology: Option<SubmitTopology>,
    wait: Option<Wait>,
    approval: Option<Approval>,
    collect: Option<Collect>,
    verify_table: Option<VerifyTable>,
    teardown: Option<Teardown>,
}

/// `true`, `false`, `!true` or `!false` once variables are substituted.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum Condition {
    Bool(bool),
    Text(String),
}

/// The schema says what the loader checks: exactly one action key per task.
fn exactly_one_action(schema: &mut schemars::Schema) {
    let one_of: Vec<serde_json::Value> = KINDS
        .split(", ")
        .map(|kind| serde_json::json!({ "required": [kind] }))
        .collect();
    schema.insert("oneOf".into(), one_of.into());
}

/// Why a task as written is not one task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskShapeError {
    #[error("task `{0}` does nothing: give it one of {KINDS}")]
    NoAction(String),
    #[error("task `{task}` has more than one kind ({kinds}); split it into one task per kind")]
    SeveralActions { task: String, kinds: String },
    #[error("task `{0}` starts no instance, so it has nothing to restart; `restart` goes on provision, start-source and submit-topology tasks")]
    NothingToRestart(String),
}

impl TryFrom<TaskFile> for Task {
    type Error = TaskShapeError;

    fn try_from(file: TaskFile) -> Result<Self, TaskShapeError> {
        let mut actions: Vec<Action> = [
            file.provision.map(Action::Provision),
            file.create_topics.map(Action::CreateTopics),
            file.start_source.map(Action::StartSource),
            file.submit_topology.map(Action::SubmitTopology),
            file.wait.map(Action::Wait),
            file.approval.map(Action::Approval),
            file.collect.map(Action::Collect),
            file.verify_table.map(Action::VerifyTable),
            file.teardown.map(Action::Teardown),
        ]
        .into_iter()
        .flatten()
        .collect();
        let action = match actions.len() {
            1 => actions.remove(0),
            0 => return Err(TaskShapeError::NoAction(file.name)),
            _ => {
                let kinds: Vec<&str> = actions.iter().map(Action::kind).collect();
                return Err(TaskShapeError::SeveralActions {
                    task: file.name,
                    kinds: kinds.join(", "),
                });
            }
        };
        let starts_instances = matches!(
            action,
            Action::Provision(_) | Action::StartSource(_) | Action::SubmitTopology(_)
        );
        if file.restart.is_some() && !starts_instances {
            return Err(TaskShapeError::NothingToRestart(file.name));
        }
        Ok(Task {
            name: file.name,
            depends: file.depends,
            when: file.when,
            retries: file.retries,
            retry_delay: file.retry_delay,
            timeout: file.timeout,
            on_failure: file.on_failure,
            restart: file.restart,
            action,
        })
    }
}
