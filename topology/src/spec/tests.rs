use super::*;

const MINIMAL: &str = "\
name: t
params:
  threshold: 50
input: { topic: raw, group: g }
error_topic: errors
operators:
  - parse: {}
  - extract: { fields: { rate: { pointer: /a, type: number } } }
  - threshold: { field: rate, above: ${threshold}, absolute: true }
  - emit: { topic: out, fields: [rate] }
";

fn parse(text: &str, overrides: &[(&str, &str)]) -> Result<TopologySpec, SpecError> {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TopologySpec::parse(Path::new("t.yaml"), text, &overrides)
}

#[test]
fn parameters_take_defaults_and_overrides() {
    let spec = parse(MINIMAL, &[]).unwrap();
    let OperatorSpec::Threshold(t) = &spec.operators[2] else {
        panic!("expected threshold, got {:?}", spec.operators[2]);
    };
    assert_eq!(t.above, Some(50.0));
    let spec = parse(MINIMAL, &[("threshold", "7.5")]).unwrap();
    let OperatorSpec::Threshold(t) = &spec.operators[2] else {
        panic!("expected threshold");
    };
    assert_eq!(t.above, Some(7.5));
    assert_eq!(
        spec.output_topics(),
        vec!["out".to_string(), "errors".to_string()]
    );
}

#[test]
fn unknown_parameter_reference_names_line_and_column() {
    let text = MINIMAL.replace("${threshold}", "${treshold}");
    let err = parse(&text, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "t.yaml:9:38: unknown parameter `treshold` (declared: threshold)"
    );
}

#[test]
fn unknown_override_is_refused() {
    let err = parse(MINIMAL, &[("limit", "3")]).unwrap_err().to_string();
    assert!(err.contains("cannot set `limit`"), "{err}");
}

#[test]
fn unknown_field_is_reported_with_location() {
    let text = MINIMAL.replace("absolute: true", "absolut: true");
    let err = parse(&text, &[]).unwrap_err();
    match err {
        SpecError::Invalid { line, message, .. } => {
            assert_eq!(line, 9);
            assert!(message.contains("absolut"), "{message}");
        }
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn threshold_without_bound_is_refused() {
    let text = MINIMAL.replace("above: ${threshold}, ", "");
    let err = parse(&text, &[]).unwrap_err().to_string();
    assert!(err.contains("needs `above`, `below` or both"), "{err}");
}

#[test]
fn pointer_must_start_with_slash() {
    let text = MINIMAL.replace("pointer: /a", "pointer: a.b");
    let err = parse(&text, &[]).unwrap_err().to_string();
    assert!(err.contains("not a JSON pointer"), "{err}");
}

#[test]
fn escaped_dollar_is_kept() {
    let values = BTreeMap::from([("x".to_string(), "1".to_string())]);
    let out = params::substitute(Path::new("t"), "a: $${x} ${x}\n", &values).unwrap();
    assert_eq!(out, "a: ${x} 1\n");
}

mod hostile_input {
    use proptest::prelude::*;

    use super::*;

    const SHIPPED: &str = include_str!("../../../workflows/topologies/bitcoin-yuan.yaml");

    /// The shipped topology with `removed` bytes cut at `at` and `inserted` put there.
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
        fn a_damaged_topology_parses_or_is_refused_with_its_file_named(
            at in 0usize..4000,
            removed in 0usize..40,
            inserted in "\\PC{0,12}",
        ) {
            let text = mutated(at, removed, &inserted);
            if let Err(error) = TopologySpec::parse(Path::new("t.yaml"), &text, &[]) {
                prop_assert!(error.to_string().contains("t.yaml"), "{}", error);
            }
        }

        #[test]
        fn any_parameter_value_is_taken_or_refused_with_its_file_named(
            name in "(threshold|rate_pointer|message_topic|dataflow_name|nope)",
            value in "\\PC{0,40}",
        ) {
            let overrides = [(name, value)];
            if let Err(error) = TopologySpec::parse(Path::new("t.yaml"), SHIPPED, &overrides) {
                prop_assert!(error.to_string().contains("t.yaml"), "{}", error);
            }
        }
    }
}

fn graph_problems(steps: &str) -> Vec<String> {
    let text =
        format!("name: t\ninput: {{ topic: raw, group: g }}\nerror_topic: errors\nsteps:\n{steps}");
    match TopologySpec::parse(Path::new("t.yaml"), &text, &[]) {
        Ok(_) => Vec::new(),
        Err(error @ SpecError::Problems { .. }) => {
            error.to_string().lines().map(str::to_string).collect()
        }
        Err(other) => panic!("expected problems, got {other}"),
    }
}

#[test]
fn a_graph_is_read_into_steps_over_one_list_of_operators() {
    let text = "name: t
input: { topic: raw, group: g }
error_topic: errors
steps:
  - name: rates
    operators:
      - parse: {}
      - extract: { fields: { rate: { pointer: /r, type: number } } }
  - name: big
    from: rates
    operators:
      - filter: \"rate > 1.0\"
      - emit: { topic: big, fields: [rate] }
  - name: all
    from: [rates, big]
    operators:
      - emit: { topic: all, fields: [rate] }
";
    let spec = TopologySpec::parse(Path::new("t.yaml"), text, &[]).unwrap();
    assert_eq!(spec.operators.len(), 5);
    let shape: Vec<(&str, Reads, std::ops::Range<usize>)> = (spec.steps.iter())
        .map(|step| {
            (
                step.name.as_str(),
                step.reads.clone(),
                step.operators.clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("rates", Reads::Input(vec![0]), 0..2),
            ("big", Reads::Steps(vec![0]), 2..4),
            ("all", Reads::Steps(vec![0, 1]), 4..5),
        ]
    );
    assert_eq!(spec.output_topics(), vec!["big", "all", "errors"]);
}

#[test]
fn a_chain_of_operators_is_one_step_reading_the_input() {
    let spec = parse(MINIMAL, &[]).unwrap();
    assert_eq!(spec.steps.len(), 1);
    assert_eq!(spec.steps[0].name, Step::CHAIN);
    assert_eq!(spec.steps[0].reads, Reads::Input(vec![0]));
    assert_eq!(spec.steps[0].operators, 0..spec.operators.len());
}

#[test]
fn every_broken_rule_of_a_graph_is_reported_at_its_step_or_operator() {
    let problems = graph_problems(
        "  - name: rates
    operators:
      - extract: { fields: { rate: { pointer: /r, type: number } } }
  - name: high
    from: [rates, later, nowhere]
    operators:
      - parse: {}
      - set: { level: \"'high'\" }
  - name: low
    from: rates
    operators:
      - set: { other: \"1\" }
  - name: rates
    from: [high, low]
    operators:
      - emit: { topic: levels, fields: [rate, level] }
  - name: later
    operators: []
",
    );
    let expected = [
        "t.yaml:7:9: the first operator of a step reading the input topic must be `parse`",
        "t.yaml:8:5: step `high` reads `later`, which comes after it",
        "t.yaml:8:5: step `high` reads `nowhere`, which is no step",
        "t.yaml:11:9: step `high` takes records that earlier steps parsed already",
        "t.yaml:17:5: two steps are named `rates`",
        "t.yaml:20:9: emit reads field `level`, which not all the steps it takes records from \
         set (`low` does not)",
        "t.yaml:21:5: step `later` has no operators",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, start) in problems.iter().zip(expected) {
        assert!(problem.starts_with(start), "{problem}\nexpected: {start}");
    }
}

#[test]
fn operators_and_steps_together_are_refused() {
    let text = format!("{MINIMAL}steps:\n  - name: s\n    operators:\n      - parse: {{}}\n");
    let error = parse(&text, &[]).unwrap_err().to_string();
    assert!(error.contains("not both"), "{error}");
}

fn input_problems(input: &str, steps: &str) -> Vec<String> {
    let text = format!("name: t\ninput: {input}\nerror_topic: errors\nsteps:\n{steps}");
    match TopologySpec::parse(Path::new("t.yaml"), &text, &[]) {
        Ok(_) => Vec::new(),
        Err(error @ SpecError::Problems { .. }) => {
            error.to_string().lines().map(str::to_string).collect()
        }
        Err(other) => panic!("expected problems, got {other}"),
    }
}

const TWO_ENTRIES: &str = "  - name: a
    topics: a
    operators:
      - parse: {}
      - emit: { topic: out, fields: [] }
  - name: b
    topics: [b]
    operators:
      - parse: {}
";

#[test]
fn steps_read_the_input_topics_they_name_or_all_of_them() {
    let text = format!(
        "name: t\ninput: {{ topics: [a, b, c], group: g }}\nerror_topic: errors\nsteps:\n\
         {TWO_ENTRIES}  - name: every\n    operators:\n      - parse: {{}}\n"
    );
    let spec = TopologySpec::parse(Path::new("t.yaml"), &text, &[]).unwrap();
    assert_eq!(spec.input.topics, vec!["a", "b", "c"]);
    let reads: Vec<&Reads> = spec.steps.iter().map(|step| &step.reads).collect();
    assert_eq!(
        reads,
        [
            &Reads::Input(vec![0]),
            &Reads::Input(vec![1]),
            &Reads::Input(vec![0, 1, 2])
        ]
    );
    assert_eq!(spec.input.index_of("c"), Some(2));
    assert_eq!(spec.input.index_of("d"), None);
}

#[test]
fn input_topics_are_checked_at_their_place() {
    assert_eq!(
        input_problems("{ topics: [a, b, c, a], group: g }", TWO_ENTRIES),
        [
            "t.yaml:2:8: the input lists topic `a` twice",
            "t.yaml:2:8: no step reads the input topic `c`: its records would be consumed and go \
             nowhere; name it in a step's `topics`, or leave it out of the input",
        ]
    );
    assert_eq!(
        input_problems(
            "{ topic: a, topics: [b], group: g }",
            "  - name: a\n    operators: [parse: {}]\n"
        ),
        [
            "t.yaml:2:8: the input names its topics twice: write `topic: NAME` for one topic or \
          `topics: [A, B]` for several, not both"
        ]
    );
    assert_eq!(
        input_problems("{ group: g }", "  - name: a\n    operators: [parse: {}]\n"),
        [
            "t.yaml:2:8: the input names no topic: write `topic: NAME`, or `topics: [A, B]` for \
          several"
        ]
    );
    let steps = "  - name: a
    topics: [a, z]
    operators: [parse: {}]
  - name: b
    from: a
    topics: b
    operators: [parse: {}]
";
    let problems = input_problems("{ topics: [a, b], group: g }", steps);
    let expected = [
        "t.yaml:5:5: step `a` reads topic `z`, which is not an input topic (input: a, b); add it \
         to the input's `topics`",
        "t.yaml:8:5: step `b` reads both earlier steps (`from`) and input topics (`topics`)",
    ];
    assert!(problems.len() >= 2, "{problems:#?}");
    for start in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(start)),
            "{start}\nin {problems:#?}"
        );
    }
    assert!(
        (problems.iter()).any(|p| p.contains("no step reads the input topic `b`")),
        "{problems:#?}"
    );
}

#[test]
fn a_rekey_ends_its_step_is_read_and_names_its_repartition_topic() {
    let spec = |steps: &str| {
        TopologySpec::parse(
            Path::new("t.yaml"),
            &format!(
                "name: t\ninput: {{ topic: raw, group: g }}\nerror_topic: errors\nsteps:\n{steps}"
            ),
            &[],
        )
    };
    let good = spec(
        "  - name: split
    operators: [ { parse: {} }, { extract: { fields: { m: /m } } }, { rekey: m } ]
  - name: out
    from: split
    operators: [ { emit: { topic: o, fields: [m] } } ]
",
    )
    .unwrap();
    assert_eq!(good.repartitions.len(), 1);
    assert_eq!(good.repartitions[0].topic, "g-split-repartition");
    assert_eq!(good.consumed_topics(), vec!["raw", "g-split-repartition"]);
    assert_eq!(good.consumed_index("g-split-repartition"), Some(1));
    assert_eq!(good.consumed_index("raw"), Some(0));
    let error = spec(
        "  - name: split
    operators: [ { parse: {} }, { extract: { fields: { m: /m } } }, { rekey: m }, { emit: { topic: o, fields: [m] } } ]
",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("`rekey` ends its step"), "{error}");
    let unread = spec(
        "  - name: split
    operators: [ { parse: {} }, { extract: { fields: { m: /m } } }, { rekey: m } ]
",
    )
    .unwrap_err()
    .to_string();
    assert!(unread.contains("but no step reads it"), "{unread}");
    let unknown = spec(
        "  - name: split
    operators: [ { parse: {} }, { rekey: member } ]
  - name: out
    from: split
    operators: [ { emit: { topic: o, fields: [member] } } ]
",
    )
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("rekey expression `member` reads `member`"),
        "{unknown}"
    );
}

#[test]
fn a_join_needs_a_table_of_its_name_and_tables_need_their_own_names() {
    let text = "name: t
input: { topic: raw, group: g }
error_topic: errors
operators:
  - parse: {}
  - extract: { fields: { row: /row } }
  - table: { name: members, row: row }
  - table: { name: members, row: row }
  - join: { table: member, into: m }
";
    let error = TopologySpec::parse(Path::new("t.yaml"), text, &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("t.yaml:8:5: two tables are named `members`"),
        "{error}"
    );
    assert!(
        error.contains("t.yaml:9:5: join looks up table `member`, which no `table` operator keeps (tables: members)"),
        "{error}"
    );
}
