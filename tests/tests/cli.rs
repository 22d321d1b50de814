//! The CLI as a newcomer meets it: a workflow run by its name, its variables listed, typos
//! answered with a suggestion, every problem of a file at once, an offline run that ends at
//! once naming the line that replays recorded data, no stray log lines, an instance's logs,
//! the version and shell completions.

use std::time::{Duration, Instant};

use serde_json::Value;
use weir_tests::{shipped_workflow, WeirHomeDir};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_shipped_workflow_is_named_and_its_variables_listed_with_types_and_defaults() {
    let home = WeirHomeDir::new();
    let listed = home.ok(&["validate", "bitcoin-yuan", "--vars"]);
    let duration = (listed.lines())
        .find(|l| l.starts_with("execution_duration "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        duration.contains(" duration ")
            && duration.contains(" 120s ")
            && duration.contains("How long the dataflow runs"),
        "{duration}"
    );
    let kind = (listed.lines())
        .find(|l| l.starts_with("source_kind "))
        .unwrap();
    assert!(kind.contains("one of http, replay"), "{kind}");

    let set = home.ok(&[
        "validate",
        "bitcoin-yuan",
        "--vars",
        "--json",
        "--set",
        "threshold=75",
    ]);
    let json: Value = serde_json::from_str(&set).unwrap();
    assert_eq!(json["valid"], true);
    let threshold = (json["variables"].as_array().unwrap().iter())
        .find(|v| v["name"] == "threshold")
        .unwrap();
    assert_eq!(threshold["type"], "float");
    assert_eq!(threshold["default"], 50);
    assert_eq!(threshold["value"], "75");

    // A misspelt variable or workflow name gets the one meant.
    let typo = home.run(&["validate", "bitcoin-yuan", "--set", "treshold=3"]);
    assert!(!typo.status.success());
    assert!(
        stderr(&typo).contains("no such variable; did you mean `threshold`?"),
        "{}",
        stderr(&typo)
    );
    let typo = home.run(&["run", "bitcoin-yen"]);
    assert!(!typo.status.success());
    assert!(
        stderr(&typo).contains("no workflow `bitcoin-yen`; did you mean `bitcoin-yuan`?"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn validate_reports_every_problem_at_once_in_text_and_json() {
    let home = WeirHomeDir::new();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped_workflow("ci-smoke.yaml")).unwrap();
    // Two tasks with a misspelt field each, and a refused --set value.
    let mut tasks = 0;
    let bad: String = (text.lines())
        .map(|line| {
            let named = line.trim_start().starts_with("- name:");
            if named && tasks < 2 {
                tasks += 1;
                let indent = line.len() - line.trim_start().len() + 2;
                format!("{line}\n{}retrys: 2", " ".repeat(indent))
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, bad).unwrap();
    let file = file.to_str().unwrap();

    let output = home.run(&["validate", file, "--set", "threshold=-3"]);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert_eq!(said.matches("`retrys`").count(), 2, "{said}");
    assert!(said.contains("`threshold` (--set): `-3`"), "{said}");

    let output = home.run(&["validate", file, "--set", "threshold=-3", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], false);
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{json}");
    assert!(
        problems.iter().all(|p| p["line"].as_u64() > Some(0)),
        "{json}"
    );
}

#[test]
fn offline_a_run_ends_at_once_naming_the_replay_line_and_starts_nothing() {
    let home = WeirHomeDir::new();
    let began = Instant::now();
    // RFC 6761: a `.invalid` name never resolves, as on a machine without a network.
    let output = home.run(&[
        "run",
        "bitcoin-yuan",
        "--set",
        "source_url=https://api.example.invalid/spot",
        "--json",
    ]);
    let took = began.elapsed();
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(took < Duration::from_secs(10), "ended after {took:?}");
    let workflow = home
        .path()
        .join("shipped-workflows")
        .join(env!("CARGO_PKG_VERSION"))
        .join("bitcoin-yuan.yaml");
    let line = format!(
        "weir run {} --set source_url=https://api.example.invalid/spot --set \
         rate_pointer=/Close --set rate_title='BTC/USD monthly close (replayed, not live)' \
         --set rate_unit=USD --set source_kind=replay",
        workflow.display()
    );
    assert!(said.contains(&line), "{said}");
    assert!(
        said.contains("`api.example.invalid` does not resolve"),
        "{said}"
    );
    assert!(
        said.contains("nothing is replaced by recorded data"),
        "{said}"
    );
    assert!(home.instances().is_empty(), "nothing was started");
    // Progress lines and the error only: no log records of libraries in between.
    let stray: Vec<&str> = (said.lines())
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN "))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // Standard output holds the outcome only; progress went to standard error.
    let outcome: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outcome["state"], "failed");
    let artifacts = outcome["artifacts"].as_str().unwrap();
    assert!(said.contains(&format!("kept in {artifacts}")), "{said}");
    let runs: Vec<Value> = serde_json::from_str(&home.ok(&["runs", "--json"])).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], outcome["id"]);
    assert_eq!(runs[0]["state"], "failed");
    assert!(runs[0]["error"].as_str().unwrap().contains(&line));
    let id = runs[0]["id"].as_str().unwrap();
    let kept = home.run(&["logs", "--run", id]);
    assert!(!kept.status.success());
    assert!(stderr(&kept).contains("kept no logs"), "{}", stderr(&kept));
}

#[test]
fn an_instances_log_is_shown_by_name_and_a_typo_gets_a_suggestion() {
    let home = WeirHomeDir::new();
    home.ok(&["up", "zookeeper", "--name", "logged-zk"]);
    let last = home.run(&["logs", "logged-zk", "-n", "1"]);
    let whole = home.run(&["logs", "logged-zk", "--all"]);
    let typo = home.run(&["logs", "logged-kz"]);
    home.ok(&["down", "--all"]);
    assert!(last.status.success(), "{}", stderr(&last));
    let last = String::from_utf8_lossy(&last.stdout).into_owned();
    assert_eq!(last.lines().count(), 1, "{last}");
    let whole = String::from_utf8_lossy(&whole.stdout).into_owned();
    assert!(
        whole.lines().count() > 1,
        "ZooKeeper says more than one line: {whole}"
    );
    assert!(
        whole.ends_with(&last),
        "the last lines are the whole log's end"
    );
    assert!(!typo.status.success());
    assert!(
        stderr(&typo).contains("no instance `logged-kz`; did you mean `logged-zk`?"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn the_version_is_printed_and_bash_completes_subcommands() {
    let home = WeirHomeDir::new();
    let version: Value = serde_json::from_str(&home.ok(&["version", "--json"])).unwrap();
    let flag = home.ok(&["--version"]);
    assert_eq!(
        flag.trim(),
        format!("weir {}", version["weir"].as_str().unwrap())
    );
    assert_eq!(version["kafka"], "3.9.1");

    let script = home.ok(&["completions", "bash"]);
    let file = home.path().join("weir.bash");
    std::fs::write(&file, script).unwrap();
    // What bash offers after `weir top<TAB>`.
    let offered = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(weir top); COMP_CWORD=1; _weir weir top weir; \
             echo \"${{COMPREPLY[@]}}\"",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(offered.status.success(), "{}", stderr(&offered));
    let offered = String::from_utf8_lossy(&offered.stdout);
    let mut words: Vec<&str> = offered.split_whitespace().collect();
    words.sort();
    assert_eq!(words, ["topics", "topology"]);
}

#[test]
fn topology_check_answers_in_json_with_the_graph_or_every_located_problem() {
    let home = WeirHomeDir::new();
    let topology = weir_tests::repo_root().join("workflows/topologies/bitcoin-yuan.yaml");
    let checked: Value = serde_json::from_str(&home.ok(&[
        "topology",
        "check",
        topology.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(checked["valid"], true);
    assert_eq!(checked["input"]["topic"], "BitCoinExchangeTopic");
    assert_eq!(
        checked["input"]["topics"],
        serde_json::json!(["BitCoinExchangeTopic"])
    );
    let operators = checked["steps"][0]["operators"].as_array().unwrap();
    let last = operators.last().unwrap();
    assert!(last["fields"]["rate"].is_string(), "{checked}");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(&topology)
        .unwrap()
        .replace("field: variation", "field: varation");
    std::fs::write(&broken, text).unwrap();
    let output = home.run(&["topology", "check", broken.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let refused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(refused["valid"], false);
    let problems = refused["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["line"].as_u64() > Some(0)
                && p["message"].as_str().unwrap().contains("varation")),
        "{refused}"
    );
}
