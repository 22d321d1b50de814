//! Loading workflows: interpolation, located errors, graph checks, hostile values.

use super::*;

const WORKFLOW: &str = "\
name: t
variables:
  duration: { type: duration, default: 2s }
  kill: { type: bool, default: true }
  kafka_name: { type: string, default: kafka-1, pattern: '[a-z][a-z0-9-]*' }
tasks:
  - name: kafka
    provision: { service: kafka, instance: \"${kafka_name}\" }
  - name: run
    depends: [kafka]
    wait: { duration: \"${duration}\" }
  - name: approve
    depends: [run]
    when: \"!${kill}\"
    approval: { message: stop?, timeout: 1m, on-timeout: approve }
";

fn load(text: &str, overrides: &[(&str, &str)]) -> Result<LoadedWorkflow, WorkflowError> {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_text(Path::new("w.yaml"), text, &overrides)
}

#[test]
fn variables_are_interpolated() {
    let loaded = load(WORKFLOW, &[("kill", "false"), ("kafka_name", "k2")]).unwrap();
    let tasks = &loaded.workflow.tasks;
    let Action::Provision(provision) = &tasks[0].action else {
        panic!("{:?}", tasks[0].action)
    };
    assert_eq!(provision.instance, "k2");
    assert_eq!(tasks[2].when, Some(true));
    let Action::Approval(approval) = &tasks[2].action else {
        panic!("{:?}", tasks[2].action)
    };
    assert_eq!(approval.on_timeout, Decision::Approve);
}

#[test]
fn a_task_holds_exactly_one_kind() {
    let none = load_text(
        Path::new("w.yaml"),
        "name: w\ntasks:\n  - name: idle\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(none.starts_with("w.yaml:3:"), "{none}");
    assert!(
        none.contains("task `idle` does nothing: give it one of provision"),
        "{none}"
    );
    let two = load_text(
        Path::new("w.yaml"),
        "name: w\ntasks:\n  - name: both\n    wait: { duration: 1s }\n    teardown: {}\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        two.contains("task `both` has more than one kind (wait, teardown)"),
        "{two}"
    );
}

#[test]
fn unknown_variables_and_bad_values_name_line_and_column() {
    let text = WORKFLOW.replace("\"${duration}\"", "\"${duraton}\"");
    let err = load(&text, &[("kafka_name", "Kafka 1")])
        .unwrap_err()
        .to_string();
    assert_eq!(
            err,
            "w.yaml:11:24: unknown variable `duraton`; did you mean `duration`? (declare it under `variables:`)\n\
             w.yaml:5:3: variable `kafka_name` (--set): `Kafka 1`: does not match the pattern `[a-z][a-z0-9-]*`"
        );
}

#[test]
fn one_validation_reports_a_refused_value_and_every_task_problem() {
    // A refused --set value, two tasks with a misspelt field each, then (once those are
    // fixed) a dependency on a task that does not exist: nothing hides another problem.
    let text = WORKFLOW
        .replace(
            "    depends: [kafka]\n",
            "    depends: [kafka]\n    retrys: 2\n",
        )
        .replace(
            "    depends: [run]\n",
            "    depends: [run]\n    timout: 1m\n",
        );
    let err = load(&text, &[("duration", "soon"), ("threshhold", "3")])
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].contains("`threshhold`") && lines[0].contains("no such variable"));
    assert!(lines[1].starts_with("w.yaml:3:3: variable `duration` (--set): `soon`"));
    assert!(lines[2].starts_with("w.yaml:11:5:") && lines[2].contains("`retrys`"));
    assert!(
        lines[3].starts_with("w.yaml:13:3: task `approve`:") && lines[3].contains("`timout`"),
        "{err}"
    );

    let graph = WORKFLOW.replace("depends: [run]", "depends: [runn]");
    let err = load(&graph, &[("kill", "maybe")]).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("`kill` (--set): `maybe`: expected true or false"));
    assert!(err.contains("`runn`"), "{err}");
}

#[test]
fn a_variable_value_is_one_value_or_a_located_refusal() {
    let text = "\
name: t
variables:
  topic: { type: string, default: plain }
  kafka_name: { type: string, default: kafka-1, pattern: '[a-z][a-z0-9-]*' }
tasks:
  - name: kafka
    provision: { service: kafka, instance: \"${kafka_name}\" }
  - name: topics
    depends: [kafka]
    create-topics: { kafka: \"${kafka_name}\", topics: [\"${topic}\", ${topic}] }
";
    for hostile in [
        "a\"b",
        "x: y",
        "{ evil: 1 }",
        "line\nbreak",
        "a', b: 'c",
        "- [1]",
    ] {
        let loaded = load(text, &[("topic", hostile)]).unwrap();
        let Action::CreateTopics(create) = &loaded.workflow.tasks[1].action else {
            panic!("{:?}", loaded.workflow.tasks[1].action)
        };
        assert_eq!(create.topics, [hostile, hostile], "{hostile:?}");
        assert_eq!(loaded.workflow.tasks.len(), 2, "{hostile:?}");
    }
    // A value its declared pattern refuses names the variable and its declaration.
    let err = load(text, &[("kafka_name", "k: {x}")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("w.yaml:4:3: variable `kafka_name` (--set): `k: {x}`: does not match"),
        "{err}"
    );
    // Where a value cannot stand without changing the structure, it is refused at the
    // reference.
    let partial = text.replace("[\"${topic}\", ${topic}]", "[pre-${topic}]");
    let err = load(&partial, &[("topic", "a: b")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("w.yaml:10:59: variable `topic`: its value"),
        "{err}"
    );
}

#[test]
fn schema_errors_have_positions() {
    let text = WORKFLOW.replace("wait: {", "wiat: {");
    let err = load(&text, &[]).unwrap_err();
    assert_eq!(err.problems[0].line, 11);
    assert!(err.problems[0].message.contains("wiat"), "{err}");
}

#[test]
fn waiting_for_a_condition_needs_a_time_limit() {
    let text = WORKFLOW.replace(
        "wait: { duration: \"${duration}\" }",
        "wait: { until: { kafka: k, topic: t, messages: 3 } }",
    );
    let err = load(&text, &[]).unwrap_err().to_string();
    assert!(
        err.contains("waiting `until` a condition needs a `timeout`"),
        "{err}"
    );
    let both = WORKFLOW.replace(
        "\"${duration}\" }",
        "\"${duration}\", until: { kafka: k, topic: t, messages: 3 } }",
    );
    let err = load(&both, &[]).unwrap_err().to_string();
    assert!(err.contains("takes either `duration` or `until`"), "{err}");
}

#[test]
fn graph_problems_are_reported() {
    let text = WORKFLOW
        .replace("depends: [kafka]", "depends: [approve]")
        .replace("service: kafka,", "service: kafak,");
    let err = load(&text, &[]).unwrap_err().to_string();
    assert!(err.contains("the catalog has no service `kafak`"), "{err}");
    assert!(
        err.contains("cycle: run → approve → run")
            || err.contains("cycle: approve → run → approve"),
        "{err}"
    );
}

#[test]
fn restart_is_declared_on_tasks_that_start_instances_with_defaults() {
    let text = "name: w\ntasks:\n  - name: kafka\n    restart: {}\n    provision: { service: kafka, instance: k }\n  - name: runner\n    restart: { limit: 5, backoff: 250ms }\n    provision: { service: kafka, instance: k2 }\n";
    let loaded = load(text, &[]).unwrap();
    let tasks = &loaded.workflow.tasks;
    assert_eq!(
        tasks[0].restart,
        Some(RestartPolicy {
            limit: 3,
            backoff: Duration::from_secs(1)
        })
    );
    assert_eq!(
        tasks[1].restart,
        Some(RestartPolicy {
            limit: 5,
            backoff: Duration::from_millis(250)
        })
    );
    let misplaced = load(
        "name: w\ntasks:\n  - name: idle\n    restart: { limit: 1 }\n    wait: { duration: 1s }\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        misplaced.contains("task `idle` starts no instance, so it has nothing to restart"),
        "{misplaced}"
    );
}

mod hostile_input {
    use proptest::prelude::*;

    use super::*;

    const SHIPPED: &str = include_str!("../../../workflows/ci-smoke.yaml");

    /// The shipped workflow with `removed` bytes cut at `at` and `inserted` put there.
    fn mutated(at: usize, removed: usize, inserted: &str) -> String {
        let mut text = SHIPPED.to_string();
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + removed).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.replace_range(at..end, inserted);
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_damaged_workflow_loads_or_is_refused_with_its_file_named(
            at in 0usize..4000,
            removed in 0usize..40,
            inserted in "\\PC{0,12}",
        ) {
            let text = mutated(at, removed, &inserted);
            if let Err(error) = load_text(Path::new("w.yaml"), &text, &[]) {
                prop_assert!(error.to_string().contains("w.yaml"), "{}", error);
            }
        }

        #[test]
        fn any_variable_value_is_taken_or_refused_with_its_file_named(
            name in "(prefix|execution_duration|automatic_kill|replay_interval|threshold|restarts|nope)",
            value in "\\PC{0,40}",
        ) {
            let overrides = [(name, value)];
            if let Err(error) = load_text(Path::new("w.yaml"), SHIPPED, &overrides) {
                prop_assert!(error.to_string().contains("w.yaml"), "{}", error);
            }
        }

        #[test]
        fn any_text_loads_or_is_refused_with_its_file_named(text in "\\PC{0,300}") {
            if let Err(error) = load_text(Path::new("w.yaml"), &text, &[]) {
                prop_assert!(error.to_string().contains("w.yaml"), "{}", error);
            }
        }
    }
}
