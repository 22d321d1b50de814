//! The topology file: what a user writes to describe a dataflow.
//!
//! A topology names its input topic and consumer group, a chain of operators and an error
//! topic. Parameters declared under `params` may be referenced anywhere as `${name}` and
//! overridden from the command line, so one file serves many runs (the workflow engine passes
//! the workflow's variables this way).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::expression::Expression;
use crate::flow::{FlowProblem, Place};
use weir_contracts::yaml::YamlProblem;

/// Errors met while reading a topology file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read topology file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML is malformed or does not match the topology schema.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    /// A `${name}` reference names no declared parameter.
    #[error("{path}:{line}:{column}: unknown parameter `{name}` (declared: {declared})")]
    UnknownParam {
        path: PathBuf,
        line: usize,
        column: usize,
        name: String,
        declared: String,
    },
    /// A parameter's value cannot stand where it is referenced without changing the file's
    /// structure.
    #[error("{path}:{line}:{column}: the value of parameter `{name}` {reason}")]
    UnsafeParam {
        path: PathBuf,
        line: usize,
        column: usize,
        name: String,
        reason: weir_contracts::template::UnsafeValue,
    },
    /// `--set NAME=VALUE` names a parameter the topology does not declare.
    #[error("{path}: cannot set `{name}`: the topology declares no such parameter (declared: {declared})")]
    UnknownOverride {
        path: PathBuf,
        name: String,
        declared: String,
    },
    /// A semantic rule of the whole topology is broken (e.g. no operators).
    #[error("{path}: {message}")]
    Rule { path: PathBuf, message: String },
    /// Operators break their rules or read what no step before them sets: every problem,
    /// one per line, each at its operator.
    #[error("{}", problems.iter().map(|p| format!("{}:{}:{}: {}", path.display(), p.line, p.column, p.message)).collect::<Vec<_>>().join("\n"))]
    Problems {
        path: PathBuf,
        problems: Vec<LocatedProblem>,
    },
}

/// A problem at a place of the file (line and column, from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedProblem {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// A topology file as written: one chain of `operators`, or a graph of named `steps`.
/// [`TopologySpec::parse`] reads it into a [`TopologySpec`].
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// Name shown in logs and metrics.
    pub name: String,
    /// Parameters with their default values, referenced as `${name}`.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    pub input: InputSpec,
    /// Where records that cannot be processed go, with the reason and the original payload.
    pub error_topic: String,
    /// One chain of operators reading the input topic, applied in order to each record.
    /// Write either this or `steps`.
    #[serde(default)]
    pub operators: Vec<OperatorSpec>,
    /// A graph of named steps, each a chain of operators reading the input topic or earlier
    /// steps: a step read by several steps sends each of them every record (fan-out); a step
    /// reading several steps takes the records of all of them (fan-in). Write either this or
    /// `operators`.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
}

/// One named step of a graph topology.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// The name later steps read this step by.
    pub name: String,
    /// The earlier steps whose records this step takes (one name or a list); without it, the
    /// step reads the input topics and starts with `parse`.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "StepNames")]
    pub from: Vec<String>,
    /// Which of the input topics the step reads (one name or a list), when the topology has
    /// several: without it (and without `from`), the step reads every input topic.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "StepNames")]
    pub topics: Vec<String>,
    /// The step's operators, applied in order to each record it takes.
    pub operators: Vec<OperatorSpec>,
    /// Try the records an operator of this step refuses again, later, instead of sending them
    /// to the error topic at once (e.g. a `join` whose row has not arrived yet).
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

/// Non-blocking retries of a step: each attempt after the first goes through a retry topic of
/// its own, `GROUP-STEP-retry-N`, and waits there `backoff`, doubled for each further attempt,
/// while the step's other records go on; a record refused by every attempt goes to the
/// dead-letter topic with where it came from and why.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts after the first, each through its own retry topic.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: DurationText,
    /// Where records refused by every attempt go; the error topic without it.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
}

/// One name (a step's or a topic's), or a list of them.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum StepNames {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match StepNames::deserialize(d)? {
        StepNames::One(name) => vec![name],
        StepNames::Many(names) => names,
    })
}

/// A checked topology: its operators, step after step, and the graph of steps over them.
#[derive(Debug, Clone)]
pub struct TopologySpec {
    pub name: String,
    pub input: Input,
    pub error_topic: String,
    /// Every operator, step after step in the file's order. An operator's index here names
    /// its keyed state (its changelog topic).
    pub operators: Vec<OperatorSpec>,
    /// The steps in the file's order, each over a range of `operators`. A file written as one
    /// chain of `operators` is one step, `main`, reading the input topic.
    pub steps: Vec<Step>,
    /// The internal topics of the steps that end with `rekey`, in the steps' order.
    pub repartitions: Vec<Repartition>,
}

/// The internal topic a step ending with `rekey` writes its records to, and the steps reading
/// that step read them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repartition {
    /// The step that ends with `rekey`.
    pub step: usize,
    /// `GROUP-STEP-repartition`, as Kafka Streams names its own.
    pub topic: String,
}

/// One step of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub reads: Reads,
    /// The step's operators, as indices of [`TopologySpec::operators`].
    pub operators: std::ops::Range<usize>,
    /// How the records its operators refuse are tried again.
    pub retry: Option<Retry>,
}

/// A step's retries, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff_ms: i64,
    /// `GROUP-STEP-retry-N`, N from 1 to `attempts`.
    pub topics: Vec<String>,
    pub dead_letter_topic: String,
}

impl Retry {
    /// How long a record waits in the retry topic of attempt `attempt` (from 1).
    pub fn delay_ms(&self, attempt: u32) -> i64 {
        self.backoff_ms
            .saturating_mul(1_i64 << attempt.saturating_sub(1).min(30))
    }
}

/// What a step takes its records from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// The messages of input topics (their indices in [`Input::topics`]).
    Input(Vec<usize>),
    /// The records earlier steps (their indices) pass on.
    Steps(Vec<usize>),
}

impl Step {
    /// The name of the only step of a file written as one chain of `operators`.
    pub const CHAIN: &'static str = "main";

    /// The index of the step's last operator (none for a step without operators, which the
    /// file's check refuses).
    pub fn last_operator(&self) -> Option<usize> {
        self.operators.clone().next_back()
    }
}

/// The topics a topology consumes, as written: `topic: NAME`, or `topics: [A, B]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The one topic the topology reads. Write either this or `topics`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Several topics the topology reads, each step choosing among them with its own
    /// `topics`. They must have as many partitions each: partition N of every one of them is
    /// processed by one runner, so that keyed state sees all the records of a key (Kafka
    /// Streams calls this co-partitioning). Write either this or `topic`.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Consumer group; committed offsets (and operator state) are kept under it.
    pub group: String,
    /// Where a group without committed offsets starts.
    #[serde(default)]
    pub start: StartPosition,
}

/// The topics a checked topology consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// At least one, without duplicates; a step names them by their index here.
    pub topics: Vec<String>,
    /// Consumer group; committed offsets (and operator state) are kept under it.
    pub group: String,
    /// Where a group without committed offsets starts.
    pub start: StartPosition,
}

impl Input {
    /// The topics as one text for messages: `a`, or `a, b`.
    pub fn topics_text(&self) -> String {
        self.topics.join(", ")
    }

    /// The index of `topic` among the input topics.
    pub fn index_of(&self, topic: &str) -> Option<usize> {
        match self.topics.as_slice() {
            [_] => Some(0),
            topics => topics.iter().position(|t| t == topic),
        }
    }

    /// Reads the written form; what is wrong with it goes to `problems`.
    fn check(written: InputSpec, problems: &mut Vec<FlowProblem>) -> Self {
        let mut problem = |message: String| {
            problems.push(FlowProblem {
                place: Place::Input,
                message,
            })
        };
        let topics = match (written.topic, written.topics) {
            (Some(topic), topics) if topics.is_empty() => vec![topic],
            (None, topics) if !topics.is_empty() => topics,
            (Some(_), _) => {
                problem(
                    "the input names its topics twice: write `topic: NAME` for one topic or \
                     `topics: [A, B]` for several, not both"
                        .into(),
                );
                Vec::new()
            }
            (None, _) => {
                problem(
                    "the input names no topic: write `topic: NAME`, or `topics: [A, B]` for \
                     several"
                        .into(),
                );
                Vec::new()
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for topic in &topics {
            if topic.trim().is_empty() {
                problem("an input topic's name is empty".into());
            } else if !seen.insert(topic) {
                problem(format!("the input lists topic `{topic}` twice"));
            }
        }
        Self {
            topics,
            group: written.group,
            start: written.start,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StartPosition {
    #[default]
    Earliest,
    Latest,
}

/// One operator of the chain. Exactly one key per list item, e.g. `- parse: {}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum OperatorSpec {
    /// Parse the payload as JSON.
    Parse(ParseSpec),
    /// Copy named fields out of the parsed document by JSON pointer.
    Extract(ExtractSpec),
    /// Variation of a field against the previous value of the same key.
    Diff(DiffSpec),
    /// Pass only records whose field crosses a bound.
    Threshold(ThresholdSpec),
    /// Write selected fields to a topic; the record continues down the chain.
    Emit(EmitSpec),
    /// Aggregate a key's records over event-time windows; each window's result continues
    /// down the chain when the window closes (and, if asked, on every update).
    Window(WindowSpec),
    /// Keep only the records for which a CEL expression is true, e.g. `rate > 100.0`.
    Filter(#[schemars(with = "String")] Expression),
    /// Set fields to the values of CEL expressions, each reading the record as it came, e.g.
    /// `{ mid: "(bid + ask) / 2.0" }`.
    Set(#[schemars(with = "BTreeMap<String, String>")] BTreeMap<String, Expression>),
    /// Give each record the key a CEL expression computes (e.g. `string(member_id)`) and
    /// re-partition by it: the step's records go through an internal topic,
    /// `GROUP-STEP-repartition`, with as many partitions as the input, so that the steps
    /// reading this one see every record of a new key in one partition — and so in one
    /// runner, with one keyed state. It ends its step.
    Rekey(#[schemars(with = "String")] Expression),
    /// Keep the latest row of each key (the value of a field) as a table that `join`s of other
    /// steps look keys up in; keyed state, restored from its changelog like any other. The
    /// record goes on down its step.
    Table(TableSpec),
    /// Look the record's key up in a `table` and set a field to the row found (a
    /// stream–table join, on the key: records must be partitioned as the table is, so
    /// `rekey` them by the table's key first).
    Join(JoinSpec),
    /// Write the latest row of each key to a compacted topic: the value of a field, keyed by
    /// the record's key; a record the `delete` expression is true for writes a tombstone
    /// (no value), so compaction removes the key. The record goes on down its step.
    Upsert(UpsertSpec),
}

/// A table of the latest row per key.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The name `join`s name it by.
    pub name: String,
    /// The field holding the row (any JSON value, e.g. a change event's `after`).
    pub row: String,
    /// When this CEL expression is true, the key is removed from the table instead, e.g.
    /// `op == 'd'`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delete: Option<Expression>,
}

/// A lookup of the record's key in a table.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// The `table` looked up, by its name.
    pub table: String,
    /// The field that receives the row.
    pub into: String,
    /// A key the table does not hold sets the field to null and the record goes on (a left
    /// join). Without it, the record is refused with the key it missed: to the error topic,
    /// never dropped.
    #[serde(default)]
    pub optional: bool,
}

/// The latest row per key, written to a compacted topic.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertSpec {
    /// The topic, created compacted (`cleanup.policy=compact`) with the input's partition
    /// count when it does not exist.
    pub topic: String,
    /// The field holding the row written as the message's value.
    pub row: String,
    /// When this CEL expression is true, a tombstone is written instead, e.g. `op == 'd'`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub delete: Option<Expression>,
    /// A CEL expression giving each row's version, a number that grows with each change of
    /// a key (e.g. the change's `ts_ms`): a record older than the last one written for its
    /// key is not written (it is logged as superseded), so rows that a retry or a re-keying
    /// brought out of order never overwrite newer ones. Keyed state, like a table's.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub version: Option<Expression>,
}

impl OperatorSpec {
    /// The operator's name as the file writes it.
    pub fn name(&self) -> &'static str {
        match self {
            OperatorSpec::Parse(_) => "parse",
            OperatorSpec::Extract(_) => "extract",
            OperatorSpec::Diff(_) => "diff",
            OperatorSpec::Threshold(_) => "threshold",
            OperatorSpec::Emit(_) => "emit",
            OperatorSpec::Window(_) => "window",
            OperatorSpec::Filter(_) => "filter",
            OperatorSpec::Set(_) => "set",
            OperatorSpec::Rekey(_) => "rekey",
            OperatorSpec::Table(_) => "table",
            OperatorSpec::Join(_) => "join",
            OperatorSpec::Upsert(_) => "upsert",
        }
    }

    /// Whether the operator keeps keyed state (in a changelog topic).
    pub fn is_stateful(&self) -> bool {
        match self {
            OperatorSpec::Diff(_) | OperatorSpec::Window(_) | OperatorSpec::Table(_) => true,
            OperatorSpec::Upsert(upsert) => upsert.version.is_some(),
            _ => false,
        }
    }
}

pub use weir_contracts::duration::DurationText;

/// Event-time windows over a key's records: tumbling (`size` alone) or hopping (`advance`
/// shorter than `size`), aligned to the epoch.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Length of each window, e.g. `1m`.
    pub size: DurationText,
    /// How far each window starts after the previous one; `size` when not given (tumbling).
    #[serde(default)]
    pub advance: Option<DurationText>,
    /// Field holding the record's event time in epoch milliseconds; without it, the input
    /// message's timestamp.
    #[serde(default)]
    pub time: Option<String>,
    /// Field grouping the records; without it the Kafka message key is used. The window's
    /// result carries it under the same name.
    #[serde(default)]
    pub key: Option<String>,
    /// How long after a window's end its records may still arrive (in event time).
    #[serde(default)]
    pub grace: DurationText,
    /// Topic for records later than the grace; without it they go to the error topic. Either
    /// way they are counted as late in `/status`, never dropped silently.
    #[serde(default)]
    pub late_topic: Option<String>,
    /// When a window's result goes down the chain.
    #[serde(default)]
    pub emit: WindowEmit,
    /// Output field → aggregate of an input field, e.g. `high: { max: rate }`.
    pub aggregate: BTreeMap<String, AggregateSpec>,
}

/// When a window's result goes down the chain.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WindowEmit {
    /// Once, when stream time passes the window's end plus the grace.
    #[default]
    Close,
    /// On every record the window takes, and once more when it closes.
    Update,
}

/// One aggregate of a window: the function and the input field it reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum AggregateSpec {
    /// How many records carried the field.
    Count(String),
    Sum(String),
    Min(String),
    Max(String),
    Avg(String),
    /// The value with the earliest event time.
    First(String),
    /// The value with the latest event time.
    Last(String),
}

impl AggregateSpec {
    /// The input field the aggregate reads.
    pub fn field(&self) -> &str {
        match self {
            AggregateSpec::Count(f)
            | AggregateSpec::Sum(f)
            | AggregateSpec::Min(f)
            | AggregateSpec::Max(f)
            | AggregateSpec::Avg(f)
            | AggregateSpec::First(f)
            | AggregateSpec::Last(f) => f,
        }
    }

    /// Whether the field must hold a number.
    pub fn needs_number(&self) -> bool {
        matches!(
            self,
            AggregateSpec::Sum(_)
                | AggregateSpec::Min(_)
                | AggregateSpec::Max(_)
                | AggregateSpec::Avg(_)
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParseSpec {}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractSpec {
    /// Field name → where to find it.
    pub fields: BTreeMap<String, FieldSource>,
}

/// Where an extracted field comes from: a bare JSON pointer, or a pointer with a type.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FieldSource {
    Pointer(String),
    Typed(TypedField),
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypedField {
    pub pointer: String,
    #[serde(rename = "type", default)]
    pub kind: FieldKind,
}

/// The type an extracted value must have.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    /// Any JSON value, taken as it is.
    #[default]
    Any,
    /// A JSON number, or a string holding one (exchange APIs often quote prices).
    Number,
    /// A JSON string.
    String,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffSpec {
    /// Numeric field whose variation is computed.
    pub field: String,
    /// Field that receives the variation (`field - previous`).
    #[serde(default = "default_variation_field")]
    pub output: String,
    /// Field that receives the previous value.
    #[serde(default = "default_previous_field")]
    pub previous: String,
    /// Field grouping the values; without it the Kafka message key is used.
    #[serde(default)]
    pub key: Option<String>,
    /// A key not seen for this long (in event time) is forgotten, and removed from the
    /// changelog: its next value starts a new series. Without it, keys are kept for ever.
    #[serde(default)]
    pub ttl: Option<DurationText>,
}

fn default_variation_field() -> String {
    "variation".into()
}

fn default_previous_field() -> String {
    "previous".into()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub field: String,
    /// Pass when the value is greater than this bound.
    #[serde(default)]
    pub above: Option<f64>,
    /// Pass when the value is less than this bound.
    #[serde(default)]
    pub below: Option<f64>,
    /// Compare the absolute value (|v| > above), ignoring the sign.
    #[serde(default)]
    pub absolute: bool,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitSpec {
    pub topic: String,
    /// Fields written, in order; each must be present on the record.
    pub fields: Vec<String>,
    /// Add the input message's timestamp (milliseconds since the epoch) as `timestamp`.
    #[serde(default = "default_true")]
    pub timestamp: bool,
}

fn default_true() -> bool {
    true
}

impl TopologySpec {
    /// Every topic the runner consumes: the input topics, then the repartition topics, then
    /// the retry topics. A record's [`crate::operators::Record::topic`] is its topic's index
    /// here.
    pub fn consumed_topics(&self) -> Vec<String> {
        (self.input.topics.iter())
            .chain(self.repartitions.iter().map(|r| &r.topic))
            .chain(self.retry_topics().map(|(_, _, topic)| topic))
            .cloned()
            .collect()
    }

    /// The index of a consumed topic (see [`TopologySpec::consumed_topics`]).
    pub fn consumed_index(&self, topic: &str) -> Option<usize> {
        let internal = (self.repartitions.iter().map(|r| &r.topic))
            .chain(self.retry_topics().map(|(_, _, topic)| topic))
            .position(|t| t == topic);
        match internal {
            Some(index) => Some(self.input.topics.len() + index),
            None => self.input.index_of(topic),
        }
    }

    /// Every retry topic: its step, its attempt (from 1) and its name, step after step.
    pub fn retry_topics(&self) -> impl Iterator<Item = (usize, u32, &String)> {
        (self.steps.iter().enumerate()).flat_map(|(index, step)| {
            (step.retry.iter()).flat_map(move |retry| {
                (retry.topics.iter().enumerate())
                    .map(move |(attempt, topic)| (index, attempt as u32 + 1, topic))
            })
        })
    }

    /// The step and attempt a consumed topic's index stands for, if it is a retry topic.
    pub fn retry_of(&self, consumed: usize) -> Option<(usize, u32)> {
        let first = self.input.topics.len() + self.repartitions.len();
        let (step, attempt, _) = self.retry_topics().nth(consumed.checked_sub(first)?)?;
        Some((step, attempt))
    }

    /// Reads and validates a topology file, applying `overrides` to its parameters.
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, overrides)
    }

    /// Parses topology text; `path` is only used in error messages.
    pub fn parse(
        path: &Path,
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<Self, SpecError> {
        let expanded = Self::expand(path, text, overrides)?;
        let file: TopologyFile =
            serde_saphyr::from_str(&expanded).map_err(|e| yaml_error(path, &e))?;
        Self::from_file(path, &expanded, file)
    }

    /// The text with every `${param}` replaced by its value: what [`TopologySpec::parse`]
    /// reads, and what the published JSON Schema describes.
    pub fn expand(
        path: &Path,
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<String, SpecError> {
        let params = params::declared_params(path, text)?;
        let values = params::resolve_params(path, params, overrides)?;
        params::substitute(path, text, &values)
    }

    /// Every topic the topology writes to, error topic included, without duplicates.
    pub fn output_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .operators
            .iter()
            .filter_map(|op| match op {
                OperatorSpec::Emit(emit) => Some(emit.topic.clone()),
                OperatorSpec::Upsert(upsert) => Some(upsert.topic.clone()),
                OperatorSpec::Window(window) => window.late_topic.clone(),
                _ => None,
            })
            .chain(
                (self.steps.iter())
                    .filter_map(|step| Some(step.retry.as_ref()?.dead_letter_topic.clone())),
            )
            .collect();
        topics.push(self.error_topic.clone());
        let mut seen = std::collections::BTreeSet::new();
        topics.retain(|topic| seen.insert(topic.clone()));
        topics
    }

    /// Where the records this topology takes aside go.
    pub fn aside_topics(&self) -> crate::operators::AsideTopics {
        crate::operators::AsideTopics {
            topology: self.name.clone(),
            error_topic: self.error_topic.as_str().into(),
        }
    }

    /// Builds the graph of the file's steps and checks the rules each step and operator must
    /// keep and what flows between them ([`crate::flow`]): every problem found, each at its
    /// step's or operator's line and column in `expanded`.
    fn from_file(path: &Path, expanded: &str, file: TopologyFile) -> Result<Self, SpecError> {
        let TopologyFile {
            name,
            params: _,
            input,
            error_topic,
            operators,
            steps,
        } = file;
        let written = match (operators.is_empty(), steps.is_empty()) {
            (false, false) => {
                return Err(SpecError::Rule {
                    path: path.to_owned(),
                    message: "write the operators as one chain (`operators:`) or as a graph of \
                              named steps (`steps:`), not both"
                        .into(),
                })
            }
            (true, true) => {
                return Err(SpecError::Rule {
                    path: path.to_owned(),
                    message: "the topology has no operators: list them under `operators:` (one \
                              chain) or `steps:` (a graph of named steps)"
                        .into(),
                })
            }
            (false, true) => vec![StepSpec {
                name: Step::CHAIN.into(),
                from: Vec::new(),
                topics: Vec::new(),
                operators,
                retry: None,
            }],
            (true, false) => steps,
        };
        let mut problems = Vec::new();
        let input = Input::check(input, &mut problems);
        let (operators, steps) = graph::build(
            written,
            &input.topics,
            &graph::Names {
                group: &input.group,
                error_topic: &error_topic,
            },
            &mut problems,
        );
        let repartitions = (steps.iter().enumerate())
            .filter(|(_, step)| {
                (step.last_operator())
                    .is_some_and(|last| matches!(operators[last], OperatorSpec::Rekey(_)))
            })
            .map(|(index, step)| Repartition {
                step: index,
                topic: format!("{}-{}-repartition", input.group, step.name),
            })
            .collect();
        let spec = TopologySpec {
            name,
            input,
            error_topic,
            operators,
            steps,
            repartitions,
        };
        problems.extend(
            (spec.operators.iter().enumerate()).filter_map(|(index, op)| {
                op.rule_broken().map(|message| FlowProblem {
                    place: Place::Operator(index),
                    message,
                })
            }),
        );
        problems.extend(tables_problems(&spec.operators));
        problems.extend(crate::flow::check(&spec).1);
        if problems.is_empty() {
            return Ok(spec);
        }
        let places = places::Places::of(expanded);
        let mut located: Vec<LocatedProblem> = (problems.into_iter())
            .map(|problem| {
                let (line, column) = places.of_place(problem.place);
                LocatedProblem {
                    line,
                    column,
                    message: problem.message,
                }
            })
            .collect();
        located.sort_by_key(|p| (p.line, p.column));
        Err(SpecError::Problems {
            path: path.to_owned(),
            problems: located,
        })
    }
}

impl TopologySpec {
    /// The topics `upsert`s write: created compacted.
    pub fn upsert_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = (self.operators.iter())
            .filter_map(|op| match op {
                OperatorSpec::Upsert(upsert) => Some(upsert.topic.clone()),
                _ => None,
            })
            .collect();
        topics.dedup();
        topics
    }

    /// The index of the `table` operator named `name`.
    pub fn table_index(&self, name: &str) -> Option<usize> {
        (self.operators.iter())
            .position(|op| matches!(op, OperatorSpec::Table(table) if table.name == name))
    }
}

/// Two tables of one name, and joins naming no table.
fn tables_problems(operators: &[OperatorSpec]) -> Vec<FlowProblem> {
    let names: Vec<(usize, &str)> = (operators.iter().enumerate())
        .filter_map(|(index, op)| match op {
            OperatorSpec::Table(table) => Some((index, table.name.as_str())),
            _ => None,
        })
        .collect();
    let mut problems = Vec::new();
    for (position, (index, name)) in names.iter().enumerate() {
        if names[..position].iter().any(|(_, earlier)| earlier == name) {
            problems.push(FlowProblem {
                place: Place::Operator(*index),
                message: format!("two tables are named `{name}`: each table needs its own name"),
            });
        }
    }
    for (index, op) in operators.iter().enumerate() {
        if let OperatorSpec::Join(join) = op {
            if !names.iter().any(|(_, name)| *name == join.table) {
                let mut known: Vec<&str> = names.iter().map(|(_, name)| *name).collect();
                known.sort_unstable();
                known.dedup();
                problems.push(FlowProblem {
                    place: Place::Operator(index),
                    message: format!(
                        "join looks up table `{}`, which no `table` operator keeps (tables: {})",
                        join.table,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
        }
    }
    problems
}

impl OperatorSpec {
    /// The rule of its own the operator breaks, if any.
    fn rule_broken(&self) -> Option<String> {
        match self {
            OperatorSpec::Threshold(t) if t.above.is_none() && t.below.is_none() => Some(format!(
                "threshold on `{}` needs `above`, `below` or both",
                t.field
            )),
            OperatorSpec::Threshold(t) if t.absolute && t.below.is_some() => Some(format!(
                "threshold on `{}`: `absolute` compares |value| > `above`; drop `below`",
                t.field
            )),
            OperatorSpec::Diff(d) if d.ttl.is_some_and(|ttl| ttl.millis() == 0) => Some(format!(
                "diff of `{}`: a `ttl` of zero forgets every key at once; give a duration \
                 such as `1h`, or drop `ttl` to keep keys for ever",
                d.field
            )),
            OperatorSpec::Window(w) => {
                let size = w.size.millis();
                let advance = w.advance.map_or(size, DurationText::millis);
                if size == 0 {
                    Some("window: `size` must be longer than zero, e.g. `1m`".into())
                } else if advance == 0 || advance > size {
                    Some(format!(
                        "window: `advance` must be longer than zero and at most `size` \
                         ({size} ms); it is {advance} ms"
                    ))
                } else if w.aggregate.is_empty() {
                    Some(
                        "window: `aggregate` names no output, e.g. `count: { count: rate }`".into(),
                    )
                } else {
                    None
                }
            }
            OperatorSpec::Extract(e) => e.fields.iter().find_map(|(name, source)| {
                let pointer = source.pointer();
                (!(pointer.is_empty() || pointer.starts_with('/'))).then(|| {
                    format!(
                        "extract of `{name}` from `{pointer}`, which is not a JSON pointer (it \
                         must start with `/`, e.g. `/data/amount`)"
                    )
                })
            }),
            _ => None,
        }
    }
}

impl FieldSource {
    pub fn pointer(&self) -> &str {
        match self {
            FieldSource::Pointer(p) => p,
            FieldSource::Typed(t) => &t.pointer,
        }
    }

    pub fn kind(&self) -> FieldKind {
        match self {
            FieldSource::Pointer(_) => FieldKind::Any,
            FieldSource::Typed(t) => t.kind,
        }
    }
}

/// Turns a serde-saphyr error into one that names the file, line and column.
pub fn yaml_error(path: &Path, error: &serde_saphyr::Error) -> SpecError {
    let YamlProblem {
        line,
        column,
        message,
    } = YamlProblem::of(error);
    SpecError::Invalid {
        path: path.to_owned(),
        line,
        column,
        message,
    }
}

mod graph;
mod params;
mod places;

#[cfg(test)]
mod tests;
