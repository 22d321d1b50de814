use std::path::Path;

use serde_json::json;

use super::*;

fn pipeline(operators: &str) -> Pipeline {
    let text = format!(
        "name: t\ninput: {{ topic: raw, group: g }}\nerror_topic: errors\noperators:\n{operators}"
    );
    let spec = TopologySpec::parse(Path::new("t.yaml"), &text, &[]).unwrap();
    Pipeline::new(&spec)
}

fn run(p: &mut Pipeline, doc: &str) -> Processed {
    p.process(doc.as_bytes(), Record::new(None, 1_000))
}

fn payloads(processed: &Processed) -> Vec<(String, Value)> {
    processed
        .outputs
        .iter()
        .map(|o| {
            (
                o.topic.to_string(),
                serde_json::from_slice(&o.payload).unwrap(),
            )
        })
        .collect()
}

#[test]
fn extracts_from_real_api_shapes() {
    // Shapes of public BTC rate APIs: a quoted amount, a nested currency table, keys
    // with spaces, dots and slashes.
    let coinbase = json!({"data": {"amount": "478012.35", "base": "BTC", "currency": "CNY"}});
    let ticker = json!({"CNY": {"15m": 478000.5, "last": 478001.25, "symbol": "¥"}});
    let odd = json!({"rates": {"BTC.CNY": {"last price": "1e3", "a/b": 2, "m~n": 3}}});
    let n = FieldKind::Number;
    assert_eq!(extract(&coinbase, "/data/amount", n), Ok(json!(478012.35)));
    assert_eq!(extract(&ticker, "/CNY/last", n), Ok(json!(478001.25)));
    assert_eq!(
        extract(&odd, "/rates/BTC.CNY/last price", n),
        Ok(json!(1000.0))
    );
    assert_eq!(extract(&odd, "/rates/BTC.CNY/a~1b", n), Ok(json!(2.0)));
    assert_eq!(extract(&odd, "/rates/BTC.CNY/m~0n", n), Ok(json!(3.0)));
    assert_eq!(
        extract(&ticker, "/CNY/symbol", FieldKind::String),
        Ok(json!("¥"))
    );
    assert!(extract(&ticker, "/CNY/symbol", n)
        .unwrap_err()
        .to_string()
        .contains("expected a number"));
    assert_eq!(
        extract(&ticker, "/USD/last", n).unwrap_err().to_string(),
        "nothing at JSON pointer `/USD/last`"
    );
    assert!(as_number(&json!("NaN")).is_err());
    assert!(as_number(&json!(" 12.5 ")).is_ok());
}

#[test]
fn diff_threshold_emit_chain() {
    let mut p = pipeline(
        "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - emit: { topic: rates, fields: [rate] }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [rate, previous, variation], timestamp: false }
  - threshold: { field: variation, above: 50, absolute: true }
  - emit: { topic: notifications, fields: [rate, previous, variation] }
",
    );
    let first = run(&mut p, r#"{"r": "100"}"#);
    assert_eq!(
        payloads(&first),
        vec![("rates".into(), json!({"rate": 100.0, "timestamp": 1000}))]
    );
    let small = run(&mut p, r#"{"r": 120}"#);
    assert_eq!(
        payloads(&small)[1],
        (
            "variations".into(),
            json!({"rate": 120.0, "previous": 100.0, "variation": 20.0})
        )
    );
    assert_eq!(small.outputs.len(), 2, "20 is under the threshold");
    let drop = run(&mut p, r#"{"r": 60}"#);
    assert_eq!(
        payloads(&drop)[2],
        (
            "notifications".into(),
            json!({"rate": 60.0, "previous": 120.0, "variation": -60.0, "timestamp": 1000})
        )
    );
    assert_eq!(drop.updates.len(), 1);
    let decimals = run(&mut p, r#"{"r": 203.74}"#);
    let decimals_again = run(&mut p, r#"{"r": 126.24}"#);
    assert_eq!(payloads(&decimals)[1].1["variation"], json!(143.74));
    assert_eq!(payloads(&decimals_again)[1].1["variation"], json!(-77.5));
}

#[test]
fn signed_thresholds() {
    let mut p = pipeline(
        "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - threshold: { field: v, above: 10, below: -5 }
  - emit: { topic: out, fields: [v], timestamp: false }
",
    );
    let passed: Vec<bool> = ["11", "10", "0", "-5", "-6"]
        .iter()
        .map(|v| !run(&mut p, &format!("{{\"v\": {v}}}")).outputs.is_empty())
        .collect();
    assert_eq!(passed, vec![true, false, false, false, true]);
}

#[test]
fn bad_records_report_operator_and_reason() {
    let mut p = pipeline(
        "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - emit: { topic: rates, fields: [rate] }
",
    );
    let garbage = run(&mut p, "not json");
    assert_eq!(garbage.error.as_ref().unwrap().operator, "parse");
    assert!(garbage.outputs.is_empty());
    let missing = run(&mut p, r#"{"x": 1}"#);
    let error = missing.error.unwrap();
    assert_eq!(error.operator, "extract");
    assert_eq!(error.reason, "field `rate`: nothing at JSON pointer `/r`");
    let text = run(&mut p, r#"{"r": "n/a"}"#).error.unwrap();
    assert_eq!(
        text.reason,
        "field `rate`: expected a number, found \"n/a\""
    );
}

#[test]
fn a_series_restart_begins_only_its_own_key_again() {
    let mut pipeline = pipeline(
        "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [variation] }
",
    );
    let mut run = |key: &str, rate: f64, restart: bool| {
        let mut record = Record::new(Some(key.into()), 1);
        if restart {
            record = record.restarting_series();
        }
        let processed = pipeline.process(json!({ "r": rate }).to_string().as_bytes(), record);
        processed.outputs.len()
    };
    assert_eq!(run("a", 1.0, false), 0);
    assert_eq!(run("b", 5.0, false), 0);
    assert_eq!(run("a", 2.0, true), 0, "a begins again");
    assert_eq!(run("b", 6.0, false), 1, "b goes on");
    assert_eq!(
        run("a", 4.0, false),
        1,
        "a's new series has its first value"
    );
}

#[test]
fn no_variation_spans_a_series_restart() {
    let mut pipeline = pipeline(
        "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [variation] }
",
    );
    let run = |p: &mut Pipeline, rate: f64, restart: bool| {
        let mut record = Record::new(None, 1);
        if restart {
            record = record.restarting_series();
        }
        p.process(json!({ "r": rate }).to_string().as_bytes(), record)
    };
    assert!(run(&mut pipeline, 100.0, false).outputs.is_empty());
    assert_eq!(run(&mut pipeline, 90_000.0, false).outputs.len(), 1);
    let seam = run(&mut pipeline, 100.0, true);
    assert!(seam.outputs.is_empty(), "no move from 90000 back to 100");
    let after = run(&mut pipeline, 110.0, false);
    assert_eq!(
        serde_json::from_slice::<Value>(&after.outputs[0].payload).unwrap()["variation"],
        10.0
    );
}

#[test]
fn a_reused_processed_holds_only_its_last_records_results() {
    let mut p = pipeline(
        "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - emit: { topic: rates, fields: [rate], timestamp: false }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [variation], timestamp: false }
",
    );
    let mut processed = Processed::default();
    let mut run = |doc: &str, processed: &mut Processed| {
        p.process_into(doc.as_bytes(), Record::new(Some("k".into()), 1), processed)
    };
    run(r#"{"r": 1}"#, &mut processed);
    assert_eq!(
        payloads(&processed),
        [("rates".into(), json!({"rate": 1.0}))]
    );
    assert_eq!(processed.updates.len(), 1);
    run(r#"{"r": 3}"#, &mut processed);
    assert_eq!(
        payloads(&processed),
        [
            ("rates".into(), json!({"rate": 3.0})),
            ("variations".into(), json!({"variation": 2.0}))
        ]
    );
    run("not json", &mut processed);
    assert!(processed.outputs.is_empty() && processed.updates.is_empty());
    assert_eq!(processed.error.as_ref().map(|e| e.operator), Some("parse"));
    run(r#"{"r": 4}"#, &mut processed);
    assert_eq!(processed.error, None);
    assert_eq!(
        payloads(&processed),
        [
            ("rates".into(), json!({"rate": 4.0})),
            ("variations".into(), json!({"variation": 1.0}))
        ]
    );
    assert!(
        matches!(processed.updates[0].value, Some(StateValue::Last(last)) if last.value == 4.0)
    );
}

#[test]
fn diff_groups_by_key_and_restores_state() {
    let ops = "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number }, pair: /p } }
  - diff: { field: v, key: pair }
  - emit: { topic: out, fields: [pair, variation], timestamp: false }
";
    let mut p = pipeline(ops);
    assert!(run(&mut p, r#"{"p": "a", "v": 1}"#).outputs.is_empty());
    assert!(run(&mut p, r#"{"p": "b", "v": 10}"#).outputs.is_empty());
    let a = run(&mut p, r#"{"p": "a", "v": 4}"#);
    assert_eq!(payloads(&a)[0].1, json!({"pair": "a", "variation": 3.0}));
    // Keys `a` and `b`, each 1 + 4 + 16 bytes, however often they were seen.
    assert_eq!(p.state_sizes(), [(2, 2, 42)]);

    let mut restarted = pipeline(ops);
    restarted.restore(
        0,
        [StateUpdate {
            operator_index: 2,
            key: "b".into(),
            value: Some(StateValue::Number(10.0)),
        }],
    );
    let b = run(&mut restarted, r#"{"p": "b", "v": 7}"#);
    assert_eq!(payloads(&b)[0].1, json!({"pair": "b", "variation": -3.0}));
    // One key of one byte, its partition (4 bytes), its value and when it was seen (16).
    assert_eq!(restarted.state_sizes(), [(2, 1, 21)]);
    restarted.forget(0);
    assert_eq!(restarted.state_sizes(), [(2, 0, 0)]);
}

#[test]
fn a_key_is_never_diffed_against_another_partitions_value() {
    let ops = "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - diff: { field: v }
  - emit: { topic: out, fields: [variation], timestamp: false }
";
    let mut p = pipeline(ops);
    let in_partition = |p: &mut Pipeline, partition: i32, v: f64| {
        let record = Record::new(Some("k".into()), 1).in_partition(partition);
        let processed = p.process(json!({ "v": v }).to_string().as_bytes(), record);
        payloads(&processed)
            .first()
            .map(|(_, body)| body["variation"].clone())
    };
    assert_eq!(in_partition(&mut p, 0, 1.0), None);
    assert_eq!(
        in_partition(&mut p, 1, 50.0),
        None,
        "a first value in partition 1"
    );
    assert_eq!(in_partition(&mut p, 0, 3.0), Some(json!(2.0)));
    assert_eq!(in_partition(&mut p, 1, 55.0), Some(json!(5.0)));
    // Partition 1 moves away and comes back with what its other runner committed.
    p.forget(1);
    assert_eq!(
        in_partition(&mut p, 0, 4.0),
        Some(json!(1.0)),
        "partition 0 kept"
    );
    p.restore(
        1,
        [StateUpdate {
            operator_index: 2,
            key: "k".into(),
            value: Some(StateValue::Number(60.0)),
        }],
    );
    assert_eq!(in_partition(&mut p, 1, 61.0), Some(json!(1.0)));
}

fn at(p: &mut Pipeline, key: &str, doc: Value, timestamp_ms: i64) -> Processed {
    let record = Record::new(Some(key.into()), timestamp_ms);
    p.process(doc.to_string().as_bytes(), record)
}

#[test]
fn idle_keys_expire_with_a_tombstone_and_start_a_new_series() {
    let mut p = pipeline(
        "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - diff: { field: v, ttl: 10s }
  - emit: { topic: out, fields: [variation], timestamp: false }
",
    );
    assert!(at(&mut p, "idle", json!({"v": 1}), 0).outputs.is_empty());
    for second in 1..=12 {
        at(&mut p, "busy", json!({ "v": second }), second * 1_000);
    }
    assert_eq!(p.state_sizes()[0].1, 1, "only `busy` is left");
    let expired = at(&mut p, "busy", json!({"v": 13}), 13_000);
    let tombstones: Vec<_> = (expired.updates.iter())
        .filter(|u| u.value.is_none())
        .collect();
    assert!(tombstones.is_empty(), "`idle` went at an earlier sweep");
    let again = at(&mut p, "idle", json!({"v": 5}), 14_000);
    assert!(
        again.outputs.is_empty(),
        "a new series: no variation from 1"
    );
}

#[test]
fn an_expired_key_leaves_the_changelog_as_a_tombstone() {
    let mut p = pipeline(
        "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - diff: { field: v, ttl: 8s }
",
    );
    at(&mut p, "idle", json!({"v": 1}), 0);
    let sweep = at(&mut p, "busy", json!({"v": 1}), 9_000);
    let tombstone = StateUpdate {
        operator_index: 2,
        key: "idle".into(),
        value: None,
    };
    assert!(sweep.updates.contains(&tombstone), "{:?}", sweep.updates);
}

const TUMBLING: &str = "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number }, t: /t } }
  - window:
      size: 10s
      time: t
      aggregate: { n: { count: v }, total: { sum: v }, mean: { avg: v } }
  - emit: { topic: out, fields: [n, total, mean, window_start], timestamp: false }
";

fn windowed(p: &mut Pipeline, key: &str, v: f64, t: i64) -> (Vec<Value>, StateUpdates) {
    let processed = at(p, key, json!({ "v": v, "t": t }), 0);
    assert_eq!(processed.error, None);
    let bodies = payloads(&processed).into_iter().map(|(_, b)| b).collect();
    (bodies, processed.updates)
}

#[test]
fn a_window_restored_from_its_changelog_closes_as_if_never_stopped() {
    let input = [("a", 1.0, 1_000), ("b", 2.0, 2_000), ("a", 3.0, 9_999)];
    let mut unstopped = pipeline(TUMBLING);
    let mut changelog: std::collections::HashMap<Arc<str>, Option<StateValue>> = Default::default();
    for (key, v, t) in input {
        for update in windowed(&mut unstopped, key, v, t).1 {
            changelog.insert(update.key, update.value);
        }
    }
    let mut restored = pipeline(TUMBLING);
    restored.restore(
        0,
        changelog.into_iter().map(|(key, value)| StateUpdate {
            operator_index: 2,
            key,
            value,
        }),
    );
    assert_eq!(
        restored.state_sizes()[0].1,
        2,
        "the open windows of a and b"
    );
    let (closed, updates) = windowed(&mut restored, "a", 7.0, 10_000);
    assert_eq!(closed, windowed(&mut unstopped, "a", 7.0, 10_000).0);
    assert_eq!(
        closed,
        [
            json!({"n": 2, "total": 4.0, "mean": 2.0, "window_start": 0}),
            json!({"n": 1, "total": 2.0, "mean": 2.0, "window_start": 0}),
        ]
    );
    let removed: Vec<_> = (updates.iter())
        .filter(|u| u.value.is_none())
        .map(|u| u.key.to_string())
        .collect();
    assert_eq!(removed, ["0:a", "0:b"], "closed windows leave the store");
}

#[test]
fn hopping_windows_take_a_record_in_each_window_it_falls_in() {
    let mut p = pipeline(&TUMBLING.replace("size: 10s", "size: 10s\n      advance: 5s"));
    windowed(&mut p, "k", 1.0, 7_000);
    windowed(&mut p, "k", 2.0, 12_000);
    let (closed, _) = windowed(&mut p, "k", 4.0, 15_000);
    assert_eq!(
        closed,
        [json!({"n": 2, "total": 3.0, "mean": 1.5, "window_start": 5_000})],
        "[0, 10 s) closed at 10 s with 1.0 alone; [5 s, 15 s) now"
    );
}

#[test]
fn filter_and_set_read_fields_with_cel() {
    let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { bid: { pointer: /bid, type: number }, ask: { pointer: /ask, type: number } } }
  - set: { mid: \"(bid + ask) / 2.0\", wide: \"ask - bid > 1.0\" }
  - filter: \"wide && key == 'BTC'\"
  - emit: { topic: out, fields: [mid], timestamp: false }
",
        );
    let wide = at(&mut p, "BTC", json!({"bid": 10, "ask": 12}), 0);
    assert_eq!(payloads(&wide), [("out".into(), json!({"mid": 11.0}))]);
    assert!(at(&mut p, "BTC", json!({"bid": 10, "ask": 10.5}), 0)
        .outputs
        .is_empty());
    assert!(at(&mut p, "ETH", json!({"bid": 1, "ask": 9}), 0)
        .outputs
        .is_empty());
}

fn written(layout: &Layout, record: &Record) -> Result<Vec<u8>, RecordError> {
    let mut json = Vec::new();
    layout.write(record, &mut json).map(|()| json)
}

#[test]
fn emit_writes_fields_in_declared_order_then_the_timestamp() {
    let mut record = Record::new(None, 1_700_000_000_123);
    record.fields.insert("rate", Value::from(2.5));
    record.fields.insert("previous", Value::from(2));
    let layout = Layout::new(&["rate".into(), "previous".into(), "rate".into()], true);
    let json = written(&layout, &record).unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"rate":2.5,"previous":2,"timestamp":1700000000123}"#
    );
    assert_eq!(written(&Layout::new(&[], false), &record).unwrap(), b"{}");
    let layout = Layout::new(&["timestamp".into(), "q\"uote".into()], true);
    record.fields.insert("timestamp", Value::from("given"));
    record.fields.insert("q\"uote", Value::from(1));
    assert_eq!(
        String::from_utf8(written(&layout, &record).unwrap()).unwrap(),
        r#"{"timestamp":"given","q\"uote":1}"#,
        "a field named timestamp is not written twice; names are escaped"
    );
    let missing = written(&Layout::new(&["variation".into()], false), &record).unwrap_err();
    assert_eq!(missing.operator, "emit");
}

fn graph(steps: &str) -> Pipeline {
    let text =
        format!("name: t\ninput: {{ topic: raw, group: g }}\nerror_topic: errors\nsteps:\n{steps}");
    let spec = TopologySpec::parse(Path::new("t.yaml"), &text, &[]).unwrap();
    Pipeline::new(&spec)
}

const FAN_OUT_AND_IN: &str = "  - name: rates
    operators:
      - parse: {}
      - extract: { fields: { rate: { pointer: /r, type: number } } }
  - name: high
    from: rates
    operators:
      - filter: \"rate > 10.0\"
      - set: { level: \"'high'\" }
  - name: all
    from: rates
    operators:
      - set: { level: \"'any'\" }
  - name: levels
    from: [high, all]
    operators:
      - emit: { topic: levels, fields: [rate, level], timestamp: false }
";

#[test]
fn a_step_read_by_two_steps_sends_each_its_own_copy_and_a_step_reading_two_takes_both() {
    let mut p = graph(FAN_OUT_AND_IN);
    assert_eq!(
        payloads(&run(&mut p, r#"{"r": 15}"#)),
        vec![
            ("levels".into(), json!({"rate": 15.0, "level": "high"})),
            ("levels".into(), json!({"rate": 15.0, "level": "any"})),
        ]
    );
    // The filter of one branch stops only that branch's copy.
    assert_eq!(
        payloads(&run(&mut p, r#"{"r": 5}"#)),
        vec![("levels".into(), json!({"rate": 5.0, "level": "any"}))]
    );
}

#[test]
fn each_operator_counts_what_it_took_and_what_it_passed_on() {
    let mut p = graph(FAN_OUT_AND_IN);
    run(&mut p, r#"{"r": 15}"#);
    run(&mut p, r#"{"r": 5}"#);
    let counts: Vec<(u64, u64)> = (p.operator_counts().iter())
        .map(|c| (c.took, c.passed))
        .collect();
    // rates: parse, extract; high: filter (5 is filtered out), set; all: set; levels: emit
    // (a copy from each branch).
    assert_eq!(counts, [(2, 2), (2, 2), (2, 1), (1, 1), (2, 2), (3, 3)]);
}

#[test]
fn an_error_in_one_branch_ends_the_record_in_every_branch_after_it() {
    let mut p = graph(
        "  - name: rates
    operators:
      - parse: {}
      - extract: { fields: { rate: { pointer: /r } } }
  - name: checked
    from: rates
    operators:
      - threshold: { field: rate, above: 1 }
      - emit: { topic: big, fields: [rate], timestamp: false }
  - name: copied
    from: rates
    operators:
      - emit: { topic: copies, fields: [rate], timestamp: false }
",
    );
    let processed = run(&mut p, r#"{"r": "many"}"#);
    let error = processed
        .error
        .clone()
        .expect("the threshold refuses a text rate");
    assert_eq!(error.operator, "threshold");
    // `checked` comes first in the file, so `copied` never saw the record: it goes to the
    // error topic once (the runner writes it there), not half-processed.
    assert!(
        payloads(&processed).is_empty(),
        "{:?}",
        payloads(&processed)
    );
}

#[test]
fn two_steps_reading_the_input_topic_each_parse_it() {
    let mut p = graph(
        "  - name: rates
    operators:
      - parse: {}
      - extract: { fields: { rate: { pointer: /r, type: number } } }
      - emit: { topic: rates, fields: [rate], timestamp: false }
  - name: pairs
    operators:
      - parse: {}
      - extract: { fields: { pair: { pointer: /p, type: string } } }
      - emit: { topic: pairs, fields: [pair], timestamp: false }
",
    );
    assert_eq!(
        payloads(&run(&mut p, r#"{"r": 2, "p": "BTC-CNY"}"#)),
        vec![
            ("rates".into(), json!({"rate": 2.0})),
            ("pairs".into(), json!({"pair": "BTC-CNY"})),
        ]
    );
}
