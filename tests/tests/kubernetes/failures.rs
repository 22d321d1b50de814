//! Runs that fail or are cancelled in pods: a missing image, a crashing container, a pod never
//! ready, Ctrl-C. Each says why and leaves nothing behind.

use super::*;

/// Runs a workflow of the given tasks (with `files` written beside it) and returns the error of
/// the failed run, after checking that it failed and left nothing behind.
fn failed_run_error(name: &str, task: &str, files: &[(&str, &str)]) -> String {
    let home = WeirHomeDir::new();
    for (file, content) in files {
        std::fs::write(home.path().join(file), content).unwrap();
    }
    let file = home.path().join(format!("{name}.yaml"));
    std::fs::write(&file, format!("name: {name}\ntasks:\n{task}")).unwrap();
    let mut child = start_run(&home, &[file.to_str().unwrap()]);
    let id = run_id(&home);
    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(!status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "failed");
    assert_nothing_left(&format!("weir-{id}"), &log);
    run["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_image_the_node_does_not_have_fails_the_run_naming_the_image() {
    // The task's timeout is long: the run must give up as soon as the image is known to be
    // missing, not when the timeout ends.
    let error = failed_run_error(
        "missing-image",
        "  - name: charts\n    timeout: 10m\n    provision: { service: chart-server, instance: c1, params: { image: \"localhost/weir-sandbox/missing:0\" } }\n",
        &[],
    );
    assert!(error.contains("cannot become ready"), "{error}");
    assert!(
        error.contains("ErrImagePull") || error.contains("ImagePullBackOff"),
        "{error}"
    );
    assert!(
        error.contains("localhost/weir-sandbox/missing:0"),
        "{error}"
    );
}

#[test]
fn a_container_that_keeps_crashing_fails_the_run_with_its_last_log_lines() {
    // The replay source refuses a recording with a line that is not JSON and exits; kubelet
    // restarts it into CrashLoopBackOff. The run must stop there, quoting the source's own
    // error from the container's log, long before the task's timeout.
    let error = failed_run_error(
        "crash-loop",
        "  - name: kafka\n    provision: { service: kafka, instance: k1, params: { mode: kraft } }\n  - name: replay\n    depends: [kafka]\n    timeout: 10m\n    start-source: { instance: bad-replay, kafka: k1, topic: raw, kind: replay, file: broken.jsonl }\n",
        &[("broken.jsonl", "{\"Close\": 1}\nthis is not json\n")],
    );
    assert!(error.contains("cannot become ready"), "{error}");
    assert!(error.contains("CrashLoopBackOff"), "{error}");
    assert!(error.contains("last log lines before crashing"), "{error}");
    assert!(error.contains("line 2"), "{error}");
}

#[test]
fn a_pod_that_never_becomes_ready_fails_the_run_naming_it_and_still_tears_down() {
    let error = failed_run_error(
        "too-big",
        "  - name: zk\n    timeout: 10s\n    provision: { service: zookeeper, instance: big-zk, params: { cpu: \"64\" } }\n",
        &[],
    );
    assert!(error.contains("pod `big-zk-0` is not ready"), "{error}");
    assert!(error.contains("Insufficient cpu"), "{error}");
}

#[test]
fn ctrl_c_cancels_a_run_counts_its_topics_and_leaves_nothing() {
    let home = WeirHomeDir::new();
    let (mut child, id, namespace) = start_ci_smoke(&home, &["execution_duration=5m"]);
    ready_pods(&namespace, &["replay-source"]);
    // SAFETY: signalling our own child, as a terminal's Ctrl-C does.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(!status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "cancelled", "{log}");
    assert!(
        run["topics"]["smoke-raw"].as_i64().is_some(),
        "counted before teardown: {run}"
    );
    assert_nothing_left(&namespace, &log);
}
