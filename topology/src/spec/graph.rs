//! The graph of a topology's steps: each step's operators laid end to end in one list, and
//! what each step reads, checked as the file is read.

use super::{OperatorSpec, Reads, Retry, Step, StepSpec};

/// What the topics the graph makes are named after.
pub(super) struct Names<'a> {
    pub group: &'a str,
    pub error_topic: &'a str,
}
use crate::flow::{FlowProblem, Place};

/// Lays the written steps' operators end to end and resolves what each step reads; every
/// broken rule of the graph goes to `problems`, at its step or operator.
pub(super) fn build(
    written: Vec<StepSpec>,
    input_topics: &[String],
    topic_names: &Names<'_>,
    problems: &mut Vec<FlowProblem>,
) -> (Vec<OperatorSpec>, Vec<Step>) {
    let mut names: Vec<String> = written.iter().map(|step| step.name.clone()).collect();
    names.dedup();
    let mut operators = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    for (index, step) in written.into_iter().enumerate() {
        let mut problem = |message: String| {
            problems.push(FlowProblem {
                place: Place::Step(index),
                message,
            })
        };
        let name = step.name;
        if name.trim().is_empty() {
            problem("a step needs a `name`, which later steps read it by".into());
        } else if steps.iter().any(|earlier| earlier.name == name) {
            problem(format!(
                "two steps are named `{name}`: each step needs its own name"
            ));
        }
        let reads = if !step.topics.is_empty() && !step.from.is_empty() {
            problem(format!(
                "step `{name}` reads both earlier steps (`from`) and input topics (`topics`): \
                 a step reads one or the other; give the topics to a step of their own and \
                 read that step"
            ));
            Reads::Steps(Vec::new())
        } else if step.from.is_empty() {
            Reads::Input(input_indices(
                &name,
                &step.topics,
                input_topics,
                &mut problem,
            ))
        } else {
            let mut sources = Vec::new();
            for source in &step.from {
                match steps.iter().position(|earlier| &earlier.name == source) {
                    Some(found) if sources.contains(&found) => {
                        problem(format!("step `{name}` reads `{source}` twice"))
                    }
                    Some(found) => sources.push(found),
                    None if names.contains(source) => problem(format!(
                        "step `{name}` reads `{source}`, which comes after it: a step reads only \
                         the steps above it, so that records cannot go round in a cycle"
                    )),
                    None => problem(format!(
                        "step `{name}` reads `{source}`, which is no step (steps: {})",
                        names.join(", ")
                    )),
                }
            }
            Reads::Steps(sources)
        };
        if step.operators.is_empty() {
            problem(format!("step `{name}` has no operators"));
        }
        let retry = step.retry.as_ref().map(|retry| Retry {
            attempts: retry.attempts,
            backoff_ms: retry.backoff.millis(),
            topics: (1..=retry.attempts)
                .map(|attempt| format!("{}-{name}-retry-{attempt}", topic_names.group))
                .collect(),
            dead_letter_topic: (retry.dead_letter_topic.clone())
                .unwrap_or_else(|| topic_names.error_topic.to_string()),
        });
        match (&retry, &reads) {
            (Some(retry), _) if retry.attempts == 0 => problem(format!(
                "step `{name}` retries 0 times: give `attempts` of 1 or more, or drop `retry`"
            )),
            (Some(_), Reads::Input(_)) => problem(format!(
                "step `{name}` reads the input topic: a retry tries a step again on the fields \
                 it took, so it goes on a step that reads other steps; move the operators that \
                 may fail into a step with `from: {name}`"
            )),
            _ => {}
        }
        let first = operators.len();
        for (offset, operator) in step.operators.iter().enumerate() {
            if matches!(operator, OperatorSpec::Rekey(_)) && offset + 1 < step.operators.len() {
                problems.push(FlowProblem {
                    place: Place::Operator(first + offset),
                    message: format!(
                        "`rekey` ends its step: its records go through a repartition topic to \
                         the steps reading `{name}`; move the operators after it into a step \
                         with `from: {name}`"
                    ),
                });
            }
            let is_parse = matches!(operator, OperatorSpec::Parse(_));
            let message = match (&reads, is_parse) {
                (Reads::Input(_), false) if offset == 0 => "the first operator of a step reading \
                    the input topic must be `parse`, which reads the message as JSON"
                    .to_string(),
                (Reads::Steps(_), true) => format!(
                    "step `{name}` takes records that earlier steps parsed already: `parse` \
                     belongs only in steps reading the input topic (without `from`)"
                ),
                _ => continue,
            };
            problems.push(FlowProblem {
                place: Place::Operator(first + offset),
                message,
            });
        }
        operators.extend(step.operators);
        steps.push(Step {
            name,
            reads,
            operators: first..operators.len(),
            retry,
        });
    }
    for (index, step) in steps.iter().enumerate() {
        let rekeys = (step.last_operator())
            .is_some_and(|last| matches!(operators[last], OperatorSpec::Rekey(_)));
        let read =
            (steps.iter()).any(|s| matches!(&s.reads, Reads::Steps(from) if from.contains(&index)));
        if rekeys && !read {
            problems.push(FlowProblem {
                place: Place::Step(index),
                message: format!(
                    "step `{}` re-keys its records, but no step reads it: they would go into \
                     its repartition topic and no further; add a step with `from: {}`",
                    step.name, step.name
                ),
            });
        }
    }
    for (index, topic) in input_topics.iter().enumerate() {
        if input_topics[..index].contains(topic) {
            continue;
        }
        let read =
            (steps.iter()).any(|step| matches!(&step.reads, Reads::Input(t) if t.contains(&index)));
        if !read && !steps.is_empty() {
            problems.push(FlowProblem {
                place: Place::Input,
                message: format!(
                    "no step reads the input topic `{topic}`: its records would be consumed \
                     and go nowhere; name it in a step's `topics`, or leave it out of the input"
                ),
            });
        }
    }
    (operators, steps)
}

/// The input topics a step reads (their indices): those it names, or all of them.
fn input_indices(
    name: &str,
    named: &[String],
    input_topics: &[String],
    problem: &mut impl FnMut(String),
) -> Vec<usize> {
    if named.is_empty() {
        return (0..input_topics.len()).collect();
    }
    let mut indices = Vec::new();
    for topic in named {
        match input_topics.iter().position(|t| t == topic) {
            Some(index) if indices.contains(&index) => {
                problem(format!("step `{name}` reads topic `{topic}` twice"))
            }
            Some(index) => indices.push(index),
            None => problem(format!(
                "step `{name}` reads topic `{topic}`, which is not an input topic (input: {}); \
                 add it to the input's `topics`",
                input_topics.join(", ")
            )),
        }
    }
    indices
}
