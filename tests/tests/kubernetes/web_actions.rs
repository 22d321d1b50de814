//! What the web UI and API do to pods: read an instance's log, stop it, launch a run.

use super::*;

/// `weir serve` reaching the sandbox, with an operator token `kube-op`; its URL and process.
fn serve(home: &WeirHomeDir) -> (String, weir_tests::WeirProcess) {
    let port = weir_supervisor::ports::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let workflows = repo_root().join("workflows");
    let log = home.path().join("serve.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = weir(
        home,
        &[
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--workflows",
            workflows.to_str().unwrap(),
        ],
    )
    .env("WEIR_TOKENS", "kube-op=operator")
    .stdout(out.try_clone().unwrap())
    .stderr(out)
    .spawn()
    .unwrap();
    (url, weir_tests::WeirProcess { child, log })
}

#[test]
fn the_web_ui_reads_the_log_of_and_stops_an_instance_in_pods() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let namespace = format!("weir-web-{}", std::process::id());
    up_in(&home, &namespace, &["zookeeper", "--name", "webzk"]);
    let (url, server) = serve(&home);
    let client = reqwest::blocking::Client::new();
    // Logs: the pod's log, read through the cluster's API by the runtime that runs it.
    let log = eventually(Duration::from_secs(30), || {
        let response = client
            .get(format!("{url}/api/instances/webzk/log"))
            .send()
            .ok()?;
        (response.status() == 200).then(|| response.text().unwrap_or_default())
    })
    .unwrap_or_else(|| panic!("no log of the cluster instance: {}", server.log_text()));
    assert!(log.to_lowercase().contains("zookeeper"), "{log}");
    // `?tail=N`: only the pod's last lines are asked of the API server.
    let tail = client
        .get(format!("{url}/api/instances/webzk/log?tail=3"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let lines = tail.lines().count();
    assert!((1..=3).contains(&lines), "{lines} lines: {tail}");
    // Stop: an operator's DELETE removes its workload and its record.
    let refused = client
        .delete(format!("{url}/api/instances/webzk"))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401, "stopping needs a token");
    let stopped = client
        .delete(format!("{url}/api/instances/webzk"))
        .bearer_auth("kube-op")
        .send()
        .unwrap();
    assert_eq!(stopped.status(), 202, "{}", server.log_text());
    eventually(Duration::from_secs(120), || {
        let gone = sandbox
            .pods(&namespace, "app.kubernetes.io/instance=webzk")
            .is_empty()
            && instances(&home).iter().all(|i| i["name"] != "webzk");
        gone.then_some(())
    })
    .unwrap_or_else(|| panic!("the instance was not stopped: {}", server.log_text()));
    let missing = client
        .get(format!("{url}/api/instances/webzk/log"))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    sandbox.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
}

#[test]
fn the_web_api_launches_a_run_on_kubernetes() {
    let home = WeirHomeDir::new();
    let (url, _server) = serve(&home);
    let client = reqwest::blocking::Client::new();
    let mut last_answer = String::new();
    let launched: Value = eventually(Duration::from_secs(20), || {
        let response = client
            .post(format!("{url}/api/runs"))
            .bearer_auth("kube-op")
            .json(&serde_json::json!({
                "workflow": "ci-smoke",
                "backend": "kubernetes",
                "variables": { "execution_duration": "2s", "prefix": "webkube" }
            }))
            .send()
            .ok()?;
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or(Value::Null);
        last_answer = format!("{status} {body}");
        (status == 202).then_some(body)
    })
    .unwrap_or_else(|| panic!("weir serve refused the launch: {last_answer}"));
    let id = launched["id"].as_str().unwrap().to_string();
    let run = eventually(Duration::from_secs(400), || {
        let run: Value = client
            .get(format!("{url}/api/runs/{id}"))
            .send()
            .ok()?
            .json()
            .ok()?;
        (run["state"] == "succeeded" || run["state"] == "failed").then_some(run)
    })
    .expect("the launched run finishes");
    let run_log = std::fs::read_to_string(home.path().join("runs").join(&id).join("weir-run.log"))
        .unwrap_or_default();
    assert_eq!(run["state"], "succeeded", "{run_log}");
    assert!(
        run_log.contains(&format!("namespace `weir-{id}` created")),
        "{run_log}"
    );
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    assert!(
        run["topics"]["smoke-raw"].as_i64().is_some_and(|n| n > 0),
        "{run}"
    );
    assert_nothing_left(&format!("weir-{id}"), &run_log);
}
