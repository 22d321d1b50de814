//! Workflow files: typed variables and a graph of tasks. [`load`] reads, checks and
//! interpolates a file, reporting every problem with its file, line and column; nothing is
//! started for a workflow that does not load.

mod duration_text;
mod task;
pub mod variables;

pub use task::{Action, Task};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weir_contracts::template::{self, value_text};
use weir_contracts::yaml::YamlProblem;

use self::variables::VariableDef;

/// One problem found in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A workflow that failed to load, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WorkflowError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                p.line,
                p.column,
                p.message
            )?;
        }
        Ok(())
    }
}

/// A workflow file as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDef>,
    /// Time limit of the whole run; on expiry the run fails and is torn down.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "Option<weir_contracts::duration::DurationText>")]
    pub timeout: Option<Duration>,
    /// What to run on a machine that cannot reach the live sources: named when a source's
    /// address does not resolve, never applied by itself.
    #[serde(default)]
    pub offline: Option<OfflineAlternative>,
    pub tasks: Vec<Task>,
}

/// Variable values that make a workflow run without the network (e.g. a replay of recorded
/// data instead of a live endpoint).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineAlternative {
    /// What the run does with these values, e.g. "recorded BTC/USD monthly closes".
    pub description: String,
    /// The variables to set, e.g. `{ source_kind: replay }`.
    pub set: BTreeMap<String, serde_json::Value>,
}

/// What a failed task (after its retries) does to the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// The run fails (and is torn down).
    #[default]
    Fail,
    /// The failure is recorded and the tasks that depend on this one still run.
    Continue,
    /// The run waits for a person: approve to continue, reject to fail.
    Pause,
}

/// What happens when an instance a task started dies while the run goes on: it is started
/// again as it was (same ports and data), at most `limit` times, after `backoff` (doubled for
/// each further restart, at most 30 s). Without it a death fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// Restarts allowed over the run (default 3).
    #[serde(default = "RestartPolicy::default_limit")]
    pub limit: u32,
    /// Pause before the first restart (default `1s`).
    #[serde(
        default = "RestartPolicy::default_backoff",
        with = "duration_text::required"
    )]
    #[schemars(with = "weir_contracts::duration::DurationText")]
    pub backoff: Duration,
}

impl RestartPolicy {
    fn default_limit() -> u32 {
        3
    }

    fn default_backoff() -> Duration {
        Duration::from_secs(1)
    }

    /// The pause before restart number `n` (from 0): the backoff doubled `n` times, at most 30 s.
    pub fn pause(&self, n: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
            .min(Duration::from_secs(30))
    }
}

/// Start a catalog service instance, or reuse a running one of the same name.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    pub service: String,
    pub instance: String,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopics {
    /// The Kafka instance.
    pub kafka: String,
    pub topics: Vec<String>,
    #[serde(default = "one")]
    pub partitions: i32,
}

fn one() -> i32 {
    1
}

/// Feed a topic: `http` polls `url`, `replay` publishes the recording `file`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSource {
    pub instance: String,
    pub kafka: String,
    pub topic: String,
    pub kind: SourceKind,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub repeat: bool,
    /// Message key of every document: all go, in order, to one partition.
    #[serde(default)]
    pub key: Option<String>,
    /// Key each document by the value at this JSON pointer (e.g. `/data/base`): documents
    /// of one key go, in order, to one partition, where one runner diffs them. Not with
    /// `key`. Without either, documents are unkeyed and spread over the partitions.
    #[serde(default)]
    pub key_pointer: Option<String>,
    /// The recording holds Debezium change events: key each by its table's primary key,
    /// `TABLE=COLUMN` pairs separated by commas (a replay only; not with `key` or
    /// `key_pointer`).
    #[serde(default)]
    pub change_events: Option<String>,
    /// How long the task waits for the source's first published document (default 60 s). A
    /// source that has published nothing by then is reported as down and the run goes on
    /// without waiting further; what it brought is judged when results are kept.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "Option<weir_contracts::duration::DurationText>")]
    pub first_publish_within: Option<Duration>,
}

impl StartSource {
    pub const DEFAULT_FIRST_PUBLISH_WITHIN: Duration = Duration::from_secs(60);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Http,
    Replay,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitTopology {
    pub instance: String,
    pub kafka: String,
    /// Topology file, relative to the workflow file.
    pub file: String,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Runner processes sharing the input's partitions as one consumer group (default 1):
    /// each partition is read by one of them, with its per-key state.
    #[serde(default)]
    pub replicas: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Wait this long.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "Option<weir_contracts::duration::DurationText>")]
    pub duration: Option<Duration>,
    /// Or wait until a condition holds (bounded by the task's `timeout`).
    #[serde(default)]
    pub until: Option<Until>,
}

/// A condition to wait for: a topic holds at least `messages` messages.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Until {
    pub kafka: String,
    pub topic: String,
    pub messages: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Approval {
    pub message: String,
    /// Without a timeout the run waits until someone answers.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "Option<weir_contracts::duration::DurationText>")]
    pub timeout: Option<Duration>,
    /// What an expired approval means.
    #[serde(default)]
    pub on_timeout: Decision,
}

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    JsonSchema,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Decision {
    Approve,
    #[default]
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Stop the run's sources, let its topologies finish what they consumed, then count the
/// messages of every topic the run created and keep the service logs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    /// The Kafka instance whose topics are counted.
    pub kafka: String,
}

/// Compare a compacted topic with the final state change events leave for one table, every
/// key, deletes included: until they match, within the task's `timeout` (default 2m), as the
/// pipeline catches up. A target that still differs then fails the task, naming the keys.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyTable {
    /// The Kafka instance holding the topic.
    pub kafka: String,
    /// The topic holding the latest row per primary key.
    pub topic: String,
    /// The change events (JSON Lines), relative to the workflow file: those the source
    /// replayed.
    pub events: String,
    /// The table the topic mirrors.
    pub table: String,
    /// The tables' primary keys, as for the source's `change_events`.
    pub primary_keys: String,
}

/// Remove everything the run started (also done at the end of every run regardless).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Teardown {}

/// A loaded workflow: the file's variables resolved and interpolated into its tasks.
#[derive(Debug, Clone)]
pub struct LoadedWorkflow {
    pub path: PathBuf,
    pub workflow: Workflow,
    /// Resolved variable values (as substituted).
    pub values: BTreeMap<String, String>,
}

impl LoadedWorkflow {
    /// A path named in the workflow, relative to the workflow file's directory.
    pub fn resolve_path(&self, relative: &str) -> PathBuf {
        let path = Path::new(relative);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(path)
        };
        // Services run in directories of their own, so paths handed to them are absolute.
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

/// Reads, checks and interpolates a workflow file.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<LoadedWorkflow, WorkflowError> {
    let text = std::fs::read_to_string(path).map_err(|e| WorkflowError {
        path: path.to_owned(),
        problems: vec![Problem {
            line: 0,
            column: 0,
            message: format!("cannot read the workflow: {e}"),
        }],
    })?;
    load_text(path, &text, overrides)
}

/// [`load`] on text already read; `path` names the file in messages and anchors relative paths.
pub fn load_text(
    path: &Path,
    text: &str,
    overrides: &[(String, String)],
) -> Result<LoadedWorkflow, WorkflowError> {
    let fail = |problems: Vec<Problem>| WorkflowError {
        path: path.to_owned(),
        problems,
    };
    let mut problems = Vec::new();
    let (expanded, values) = match expand(path, text, overrides) {
        Ok(expanded) => expanded,
        // A refused `--set` value: the rest of the file is still checked, with its defaults,
        // so that one `weir validate` reports every problem.
        Err(refused) if !overrides.is_empty() => match expand(path, text, &[]) {
            Ok(expanded) => {
                problems.extend(refused.problems);
                expanded
            }
            Err(_) => return Err(refused),
        },
        Err(refused) => return Err(refused),
    };
    let workflow = match serde_saphyr::from_str::<Workflow>(&expanded) {
        Ok(workflow) => workflow,
        Err(error) => {
            let first = yaml_problem(&error);
            let others = other_tasks_problems(text, &expanded, first.line);
            problems.push(first);
            problems.extend(others);
            return Err(fail(problems));
        }
    };
    problems.extend(check_graph(text, &workflow));
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    Ok(LoadedWorkflow {
        path: path.to_owned(),
        workflow,
        values,
    })
}

/// The YAML reader stops at the first problem; this reads each task on its own, so that the
/// problems of the other tasks are reported too — each at its task's `name:` line, leaving
/// out the task around `first_line`, whose problem is already reported where it is.
fn other_tasks_problems(text: &str, expanded: &str, first_line: usize) -> Vec<Problem> {
    #[derive(Deserialize)]
    struct Tasks {
        #[serde(default)]
        tasks: Vec<serde_json::Value>,
    }
    let Ok(loose) = serde_saphyr::from_str::<Tasks>(expanded) else {
        return Vec::new();
    };
    let named: Vec<(String, usize, usize)> = (loose.tasks.iter())
        .filter_map(|task| task.get("name")?.as_str().map(str::to_string))
        .map(|name| {
            let (line, column) = task_position(text, &name);
            (name, line, column)
        })
        .collect();
    let around_first = (named.iter())
        .filter(|(_, line, _)| *line <= first_line)
        .map(|(_, line, _)| *line)
        .max();
    (loose.tasks.into_iter())
        .filter_map(|task| {
            let name = task.get("name")?.as_str()?.to_string();
            let (_, line, column) = named.iter().find(|(n, _, _)| *n == name)?.clone();
            if Some(line) == around_first {
                return None;
            }
            let error = serde_json::from_value::<Task>(task).err()?;
            Some(Problem {
                line,
                column,
                message: format!("task `{name}`: {error}"),
            })
        })
        .collect()
}

/// The text with every `${variable}` replaced by its checked value (what [`load_text`] reads
/// and the published JSON Schema describes), and the values.
pub fn expand(
    path: &Path,
    text: &str,
    overrides: &[(String, String)],
) -> Result<(String, BTreeMap<String, String>), WorkflowError> {
    let fail = |problems: Vec<Problem>| WorkflowError {
        path: path.to_owned(),
        problems,
    };
    // First read: only the variable declarations, with references masked (a reference is not
    // valid YAML everywhere, nor a valid value of every field). The whole schema is checked
    // after substitution, on text with the same lines.
    #[derive(Deserialize)]
    struct Declarations {
        #[serde(default)]
        variables: BTreeMap<String, VariableDef>,
    }
    let masked: Declarations =
        serde_saphyr::from_str(&template::mask(text)).map_err(|e| fail(vec![yaml_problem(&e)]))?;
    let mut problems = Vec::new();
    for reference in template::references(text) {
        if !masked.variables.contains_key(&reference.name) {
            problems.push(Problem {
                line: reference.line,
                column: reference.column,
                message: format!(
                    "unknown variable `{}`{} (declare it under `variables:`)",
                    reference.name,
                    crate::suggest::did_you_mean(
                        &reference.name,
                        masked.variables.keys().map(String::as_str)
                    ),
                ),
            });
        }
    }
    let values = match variables::resolve(&masked.variables, overrides) {
        Ok(values) => values,
        Err(variable_problems) => {
            for p in variable_problems {
                let (line, column) = declaration_position(text, &p.name);
                problems.push(Problem {
                    line,
                    column,
                    message: format!("variable `{}` ({}): {}", p.name, p.origin, p.message),
                });
            }
            BTreeMap::new()
        }
    };
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    let expanded = template::substitute(text, &values).map_err(|error| {
        let reference = error.reference();
        fail(vec![Problem {
            line: reference.line,
            column: reference.column,
            message: match &error {
                template::SubstituteError::Unknown(r) => format!("unknown variable `{}`", r.name),
                template::SubstituteError::Unsafe { reference, reason } => {
                    format!("variable `{}`: its value {reason}", reference.name)
                }
            },
        }])
    })?;
    Ok((expanded, values))
}

fn yaml_problem(error: &serde_saphyr::Error) -> Problem {
    let problem = YamlProblem::of(error);
    Problem {
        line: problem.line as usize,
        column: problem.column as usize,
        message: problem.message,
    }
}

/// Where `name:` is declared under `variables:` (1-based), or the top of the file.
fn declaration_position(text: &str, name: &str) -> (usize, usize) {
    let mut in_variables = false;
    for (index, line) in text.lines().enumerate() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_variables = line.trim_end() == "variables:";
            continue;
        }
        let trimmed = line.trim_start();
        if in_variables && trimmed.starts_with(&format!("{name}:")) {
            return (index + 1, line.len() - trimmed.len() + 1);
        }
    }
    (1, 1)
}

/// Where `offline:` is (1-based), or the top of the file.
fn offline_position(text: &str) -> (usize, usize) {
    (text.lines().position(|line| line.starts_with("offline:")))
        .map_or((1, 1), |index| (index + 1, 1))
}

/// Where task `name` is declared (1-based), for graph problems.
fn task_position(text: &str, name: &str) -> (usize, usize) {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        if let Some(rest) = trimmed.strip_prefix("name:") {
            if rest.trim().trim_matches('"').trim_matches('\'') == name {
                return (index + 1, line.len() - line.trim_start().len() + 1);
            }
        }
    }
    (1, 1)
}

/// Task names unique, dependencies known and acyclic, each kind's fields consistent.
fn check_graph(text: &str, workflow: &Workflow) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, value) in workflow.offline.iter().flat_map(|o| &o.set) {
        let refused = match workflow.variables.get(name) {
            None => Some(format!(
                "the workflow declares no such variable{}",
                crate::suggest::did_you_mean(name, workflow.variables.keys().map(String::as_str))
            )),
            Some(declared) => declared
                .check(&value_text(value))
                .err()
                .map(|e| e.to_string()),
        };
        if let Some(why) = refused {
            let (line, column) = offline_position(text);
            problems.push(Problem {
                line,
                column,
                message: format!("offline: `{name}`: {why}"),
            });
        }
    }
    let mut at = |task: &str, message: String| {
        let (line, column) = task_position(text, task);
        problems.push(Problem {
            line,
            column,
            message,
        });
    };
    if workflow.tasks.is_empty() {
        at("", "the workflow has no tasks".into());
    }
    let mut names = BTreeSet::new();
    for task in &workflow.tasks {
        if !names.insert(task.name.as_str()) {
            at(
                &task.name,
                format!("task name `{}` is used twice", task.name),
            );
        }
        if let Action::Wait(wait) = &task.action {
            if wait.duration.is_some() == wait.until.is_some() {
                at(
                    &task.name,
                    format!(
                        "task `{}`: `wait` takes either `duration` or `until`",
                        task.name
                    ),
                );
            }
            if wait.until.is_some() && task.timeout.is_none() {
                at(
                    &task.name,
                    format!(
                        "task `{}`: waiting `until` a condition needs a `timeout`",
                        task.name
                    ),
                );
            }
        }
        if let Action::StartSource(source) = &task.action {
            match source.kind {
                SourceKind::Http if source.url.is_none() => at(
                    &task.name,
                    format!("task `{}`: an http source needs `url`", task.name),
                ),
                SourceKind::Replay if source.file.is_none() => at(
                    &task.name,
                    format!("task `{}`: a replay source needs `file`", task.name),
                ),
                _ => {}
            }
            if let Some(keys) = &source.change_events {
                let problem = match weir_topology::source::DocumentKey::from_all_args(
                    Some(keys),
                    source.key.as_deref(),
                    source.key_pointer.as_deref(),
                ) {
                    Err(error) => Some(error.to_string()),
                    Ok(_) if source.kind == SourceKind::Http => {
                        Some("`change-events` describes a recording: use it on a replay".into())
                    }
                    Ok(_) => None,
                };
                if let Some(problem) = problem {
                    at(&task.name, format!("task `{}`: {problem}", task.name));
                }
            }
        }
        if let Action::VerifyTable(verify) = &task.action {
            let keys = verify
                .primary_keys
                .parse::<weir_topology::source::change_event::PrimaryKeys>();
            if let Err(error) = keys {
                at(&task.name, format!("task `{}`: {error}", task.name));
            }
        }
        if let Action::Provision(provision) = &task.action {
            match weir_catalog::catalog::find(&provision.service) {
                Err(unknown) => at(&task.name, format!("task `{}`: {unknown}", task.name)),
                Ok(service) => {
                    let given: Vec<(String, String)> = provision
                        .params
                        .iter()
                        .map(|(name, value)| (name.clone(), value_text(value)))
                        .collect();
                    for problem in service.validate(&given).err().unwrap_or_default() {
                        at(&task.name, format!("task `{}`: {problem}", task.name));
                    }
                }
            }
        }
    }
    for task in &workflow.tasks {
        for dependency in &task.depends {
            if !names.contains(dependency.as_str()) {
                at(
                    &task.name,
                    format!(
                        "task `{}` depends on `{dependency}`, which is not a task of this workflow",
                        task.name
                    ),
                );
            }
        }
    }
    if let Some(cycle) = find_cycle(workflow) {
        at(
            &cycle[0],
            format!(
                "tasks depend on each other in a cycle: {}",
                cycle.join(" → ")
            ),
        );
    }
    problems
}

fn find_cycle(workflow: &Workflow) -> Option<Vec<String>> {
    let depends: BTreeMap<&str, &Vec<String>> = workflow
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), &t.depends))
        .collect();
    fn visit<'a>(
        node: &'a str,
        depends: &BTreeMap<&'a str, &'a Vec<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in depends.get(node).map(|d| d.iter()).into_iter().flatten() {
            if let Some((&key, _)) = depends.get_key_value(next.as_str()) {
                if let Some(cycle) = visit(key, depends, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for task in &workflow.tasks {
        if let Some(cycle) = visit(task.name.as_str(), &depends, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests;
