//! What flows through a topology: the fields each step reads and sets, and their types.
//!
//! Checked when a topology loads, so that a field read before any step sets it, an emitted
//! field nothing sets, or a number operator on a string field is an error of the file (all of
//! them at once, each at its operator's line and column), not a stream of records in the error
//! topic at run time.

use std::collections::BTreeMap;
use std::fmt;

use crate::expression::{Expression, BUILT_IN};
use crate::spec::{AggregateSpec, FieldKind, OperatorSpec, Reads, TopologySpec};

/// What a field is known to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Number,
    String,
    /// Anything: a pointer extracted without a type, or an expression's value.
    Any,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldType::Number => "number",
            FieldType::String => "string",
            FieldType::Any => "any",
        })
    }
}

/// Where a problem is: at the input, at a step, or at an operator (its index in
/// [`TopologySpec::operators`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    Input,
    Step(usize),
    Operator(usize),
}

/// One problem of the file, at its step or operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowProblem {
    pub place: Place,
    pub message: String,
}

/// The fields set on the record after each step.
pub type Fields = BTreeMap<String, FieldType>;

/// One operator as `weir topology check` shows it: what it does, and the fields after it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedOperator {
    pub summary: String,
    pub fields: Fields,
}

/// Walks the graph, step after step: each operator with the fields after it, and every
/// problem found. A step reading several steps starts with the fields all of them set.
pub fn check(spec: &TopologySpec) -> (Vec<CheckedOperator>, Vec<FlowProblem>) {
    let mut walk = Walk::default();
    let mut checked = Vec::new();
    let mut step_ends: Vec<Fields> = Vec::new();
    for (step_index, step) in spec.steps.iter().enumerate() {
        walk.partly_set.clear();
        walk.fields = match &step.reads {
            Reads::Input(_) => Fields::new(),
            Reads::Steps(sources) => {
                let named = sources
                    .iter()
                    .map(|&source| (spec.steps[source].name.as_str(), &step_ends[source]));
                walk.fan_in(named.collect())
            }
        };
        for index in step.operators.clone() {
            walk.index = index;
            let mut summary = walk.step(&spec.operators[index]);
            if let (OperatorSpec::Rekey(_), Some(repartition)) = (
                &spec.operators[index],
                (spec.repartitions.iter()).find(|r| r.step == step_index),
            ) {
                summary = format!("{summary} → repartition topic {}", repartition.topic);
            }
            checked.push(CheckedOperator {
                summary,
                fields: walk.fields.clone(),
            });
        }
        step_ends.push(walk.fields.clone());
    }
    (checked, walk.problems)
}

#[derive(Default)]
struct Walk {
    index: usize,
    fields: Fields,
    /// Fields some but not all of the steps a step reads set, with the steps that do not.
    partly_set: BTreeMap<String, Vec<String>>,
    problems: Vec<FlowProblem>,
}

impl Walk {
    fn problem(&mut self, message: String) {
        self.problems.push(FlowProblem {
            place: Place::Operator(self.index),
            message,
        });
    }

    /// The fields every one of `sources` (step name, fields at its end) sets: a field's type
    /// where they agree on it, `any` where they do not.
    fn fan_in(&mut self, sources: Vec<(&str, &Fields)>) -> Fields {
        let mut common = Fields::new();
        let all_names = sources.iter().flat_map(|(_, fields)| fields.keys());
        for name in all_names.collect::<std::collections::BTreeSet<_>>() {
            let kinds: Vec<Option<FieldType>> = (sources.iter())
                .map(|(_, fields)| fields.get(name).copied())
                .collect();
            if kinds.iter().all(Option::is_some) {
                let first = kinds[0];
                let agreed = kinds.iter().all(|kind| *kind == first);
                common.insert(
                    name.clone(),
                    first.filter(|_| agreed).unwrap_or(FieldType::Any),
                );
            } else {
                let without = (sources.iter().zip(&kinds))
                    .filter(|(_, kind)| kind.is_none())
                    .map(|((step, _), _)| step.to_string());
                self.partly_set.insert(name.clone(), without.collect());
            }
        }
        common
    }

    fn known(&self) -> String {
        if self.fields.is_empty() {
            "none".into()
        } else {
            (self.fields.iter())
                .map(|(name, kind)| format!("{name}: {kind}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// The field must be set before this step, and, with `number`, may hold a number.
    fn read(&mut self, operator: &str, field: &str, number: bool) {
        match self.fields.get(field).copied() {
            None => match self.partly_set.get(field) {
                Some(without) => {
                    let without = without.join("`, `");
                    self.problem(format!(
                        "{operator} reads field `{field}`, which not all the steps it takes \
                         records from set (`{without}` does not)"
                    ));
                }
                None => {
                    let known = self.known();
                    self.problem(format!(
                        "{operator} reads field `{field}`, which no step before it sets \
                         (set by then: {known})"
                    ));
                }
            },
            Some(FieldType::String) if number => self.problem(format!(
                "{operator} needs a number in field `{field}`, which holds a string \
                 (extract it with `type: number` to read numbers written as text)"
            )),
            Some(_) => {}
        }
    }

    fn read_expression(&mut self, operator: &str, expression: &Expression) {
        for name in expression.variables() {
            if !BUILT_IN.contains(&name.as_str()) && !self.fields.contains_key(name) {
                let known = self.known();
                self.problem(format!(
                    "{operator} expression `{}` reads `{name}`, which no step before it sets \
                     (set by then: {known}; `key` and `timestamp` are always there)",
                    expression.text()
                ));
            }
        }
    }

    fn step(&mut self, operator: &OperatorSpec) -> String {
        match operator {
            OperatorSpec::Parse(_) => "parse the payload as JSON".into(),
            OperatorSpec::Extract(extract) => {
                for (name, source) in &extract.fields {
                    let kind = match source.kind() {
                        FieldKind::Number => FieldType::Number,
                        FieldKind::String => FieldType::String,
                        FieldKind::Any => FieldType::Any,
                    };
                    self.fields.insert(name.clone(), kind);
                }
                let names: Vec<&str> = extract.fields.keys().map(String::as_str).collect();
                format!("extract {}", names.join(", "))
            }
            OperatorSpec::Diff(diff) => {
                self.read("diff", &diff.field, true);
                if let Some(key) = &diff.key {
                    self.read("diff (key)", key, false);
                }
                self.fields.insert(diff.output.clone(), FieldType::Number);
                self.fields.insert(diff.previous.clone(), FieldType::Number);
                let ttl = diff
                    .ttl
                    .map_or(String::new(), |ttl| format!(", keys idle {ttl} expire"));
                format!(
                    "diff {} per {} → {}, {} (keyed state{ttl})",
                    diff.field,
                    diff.key.as_deref().unwrap_or("message key"),
                    diff.output,
                    diff.previous
                )
            }
            OperatorSpec::Threshold(threshold) => {
                self.read("threshold", &threshold.field, true);
                format!("threshold on {}", threshold.field)
            }
            OperatorSpec::Emit(emit) => {
                for field in &emit.fields {
                    self.read("emit", field, false);
                }
                format!("emit [{}] → topic {}", emit.fields.join(", "), emit.topic)
            }
            OperatorSpec::Filter(expression) => {
                self.read_expression("filter", expression);
                format!("filter {}", expression.text())
            }
            OperatorSpec::Set(fields) => {
                for expression in fields.values() {
                    self.read_expression("set", expression);
                }
                for name in fields.keys() {
                    self.fields.insert(name.clone(), FieldType::Any);
                }
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                format!("set {}", names.join(", "))
            }
            OperatorSpec::Table(table) => {
                self.read("table", &table.row, false);
                if let Some(delete) = &table.delete {
                    self.read_expression("table (delete)", delete);
                }
                format!(
                    "table {} ← {} per message key{} (keyed state)",
                    table.name,
                    table.row,
                    deleted_when(table.delete.as_ref())
                )
            }
            OperatorSpec::Join(join) => {
                self.fields.insert(join.into.clone(), FieldType::Any);
                format!(
                    "join table {} on the message key → {}{}",
                    join.table,
                    join.into,
                    if join.optional {
                        " (null when missing)"
                    } else {
                        " (refused when missing)"
                    }
                )
            }
            OperatorSpec::Upsert(upsert) => {
                self.read("upsert", &upsert.row, false);
                if let Some(delete) = &upsert.delete {
                    self.read_expression("upsert (delete)", delete);
                }
                if let Some(version) = &upsert.version {
                    self.read_expression("upsert (version)", version);
                }
                format!(
                    "upsert {} per message key → compacted topic {}{}{}",
                    upsert.row,
                    upsert.topic,
                    deleted_when(upsert.delete.as_ref()),
                    upsert
                        .version
                        .as_ref()
                        .map_or(String::new(), |version| format!(
                            ", newest {} only (keyed state)",
                            version.text()
                        ))
                )
            }
            OperatorSpec::Rekey(expression) => {
                self.read_expression("rekey", expression);
                format!("rekey by {}", expression.text())
            }
            OperatorSpec::Window(window) => {
                if let Some(time) = &window.time {
                    self.read("window (time)", time, true);
                }
                if let Some(key) = &window.key {
                    self.read("window (key)", key, false);
                }
                let mut after = Fields::new();
                for (name, aggregate) in &window.aggregate {
                    let field = aggregate.field();
                    self.read("window", field, aggregate.needs_number());
                    let kind = match aggregate {
                        AggregateSpec::First(_) | AggregateSpec::Last(_) => {
                            self.fields.get(field).copied().unwrap_or(FieldType::Any)
                        }
                        _ => FieldType::Number,
                    };
                    after.insert(name.clone(), kind);
                }
                if let Some(key) = &window.key {
                    after.insert(key.clone(), FieldType::String);
                }
                after.insert("window_start".into(), FieldType::Number);
                after.insert("window_end".into(), FieldType::Number);
                // Only the window's result goes on: the fields of the records it took do not.
                self.fields = after;
                let size = window.size;
                let advance = window
                    .advance
                    .filter(|advance| *advance != size)
                    .map_or(String::new(), |advance| format!(" every {advance}"));
                format!(
                    "window {size}{advance} per {} (grace {}, keyed state; late records → {})",
                    window.key.as_deref().unwrap_or("message key"),
                    window.grace,
                    window.late_topic.as_deref().unwrap_or("the error topic")
                )
            }
        }
    }
}

/// How a summary says when a row is deleted.
fn deleted_when(delete: Option<&Expression>) -> String {
    delete.map_or(String::new(), |delete| {
        format!(", deleted when {}", delete.text())
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::SpecError;

    fn problems(operators: &str) -> String {
        let text = format!(
            "name: t\ninput: {{ topic: raw, group: g }}\nerror_topic: errors\noperators:\n{operators}"
        );
        match TopologySpec::parse(Path::new("t.yaml"), &text, &[]) {
            Ok(_) => String::new(),
            Err(error @ SpecError::Problems { .. }) => error.to_string(),
            Err(other) => panic!("expected flow problems, got {other}"),
        }
    }

    #[test]
    fn a_new_users_mistakes_are_all_reported_at_their_operators() {
        let report = problems(
            "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number }, pair: { pointer: /p, type: string } } }
  - threshold: { field: rat, above: 5 }
  - threshold: { field: pair, above: 5 }
  - emit: { topic: out, fields: [rate, variation] }
  - filter: \"rate > limit\"
",
        );
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 4, "{report}");
        assert!(
            lines[0].starts_with("t.yaml:7:5: threshold reads field `rat`"),
            "{report}"
        );
        assert!(lines[0].contains("pair: string, rate: number"), "{report}");
        assert!(lines[1].starts_with("t.yaml:8:5: threshold needs a number in field `pair`"));
        assert!(lines[2].starts_with("t.yaml:9:5: emit reads field `variation`"));
        assert!(lines[3].starts_with("t.yaml:10:5: filter expression `rate > limit` reads `limit`"));
    }

    #[test]
    fn a_window_passes_on_only_its_result() {
        let report = problems(
            "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - window: { size: 1m, aggregate: { high: { max: rate } } }
  - emit: { topic: out, fields: [high, window_start, rate] }
",
        );
        assert!(
            report.contains("t.yaml:8:5: emit reads field `rate`"),
            "{report}"
        );
        assert!(
            report.contains("high: number, window_end: number"),
            "{report}"
        );
    }

    #[test]
    fn the_shipped_topologies_flow() {
        for text in [
            include_str!("../../workflows/topologies/bitcoin-yuan.yaml"),
            include_str!("../../workflows/topologies/candles.yaml"),
            include_str!("../../workflows/topologies/rate-alerts.yaml"),
            include_str!("../../workflows/topologies/exchanges.yaml"),
        ] {
            let spec = TopologySpec::parse(Path::new("t.yaml"), text, &[]).unwrap();
            let (checked, problems) = check(&spec);
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(checked.len(), spec.operators.len());
        }
    }
}
