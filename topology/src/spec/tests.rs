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
    let out = substitute(Path::new("t"), "a: $${x} ${x}\n", &values).unwrap();
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
