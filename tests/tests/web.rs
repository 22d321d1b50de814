//! `weir serve`: the REST API's access rules and validation, durability across a restart, and
//! the UI driven in headless Chromium.

use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::{
    artifacts_dir, browser_script, eventually, kcat_produce, playwright_node_path, repo_root,
    WeirHomeDir, WeirProcess,
};

/// A `weir serve` on a free loopback port, with its own WEIR_HOME.
struct Server {
    url: String,
    process: WeirProcess,
}

fn serve(home: &WeirHomeDir, tokens: Option<&str>) -> Server {
    let port = weir_supervisor::ports::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let log = home.path().join(format!("serve-{port}.log"));
    let mut command = home.command(&[
        "serve",
        "--addr",
        &addr,
        "--workflows",
        repo_root().join("workflows").to_str().unwrap(),
    ]);
    match tokens {
        Some(tokens) => command.env("WEIR_TOKENS", tokens),
        None => command.env_remove("WEIR_TOKENS"),
    };
    let out = std::fs::File::create(&log).unwrap();
    let child = command
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let process = WeirProcess { child, log };
    let url = format!("http://{addr}");
    eventually(Duration::from_secs(20), || {
        reqwest::blocking::get(format!("{url}/api/dashboard"))
            .ok()
            .filter(|r| r.status().is_success())
    })
    .unwrap_or_else(|| panic!("weir serve did not start: {}", process.log_text()));
    Server { url, process }
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut request = client.request(method.parse().unwrap(), format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Runs a Playwright script of `tests/browser` in Chromium against `server`; returns the
/// JSON line it printed of what it saw.
fn browse(server: &Server, script: &str, args: &[&str]) -> Value {
    browser_script(script, args)
        .unwrap_or_else(|failed| panic!("{failed}\n{}", server.process.log_text()))
}

const TOKENS: &str = "view-token=viewer,op-token=operator";

#[test]
fn mutating_endpoints_refuse_missing_or_insufficient_tokens() {
    let home = WeirHomeDir::new();
    let server = serve(&home, Some(TOKENS));
    let mutations: [(&str, &str, Option<&str>); 5] = [
        (
            "POST",
            "/api/instances",
            Some(r#"{"service": "zookeeper"}"#),
        ),
        ("DELETE", "/api/instances/zookeeper-1", None),
        ("POST", "/api/runs", Some(r#"{"workflow": "ci-smoke"}"#)),
        ("POST", "/api/runs/r1/approve", None),
        ("POST", "/api/runs/r1/reject", None),
    ];
    for (method, path, body) in mutations {
        let (status, reply) = call(&server, method, path, None, body);
        assert_eq!(status, 401, "{method} {path} without a token: {reply}");
        let (status, reply) = call(&server, method, path, Some("view-token"), body);
        assert_eq!(status, 403, "{method} {path} as viewer: {reply}");
        let (status, _) = call(&server, method, path, Some("made-up"), body);
        assert_eq!(status, 401, "{method} {path} with an unknown token");
    }
    // Reads are open on loopback.
    assert_eq!(call(&server, "GET", "/api/dashboard", None, None).0, 200);
    let (status, openapi) = call(&server, "GET", "/api/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(openapi["paths"]["/api/runs/{id}/approve"]["post"]["security"].is_array());
    // Cross-site form posts are refused even with a token.
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/runs", server.url))
        .bearer_auth("op-token")
        .header("origin", "http://evil.example")
        .body(r#"{"workflow": "ci-smoke"}"#)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        home.ok(&["runs", "--json"]).trim(),
        "[]",
        "nothing was started"
    );
    drop(server);
}

#[test]
fn a_page_reaching_the_loopback_server_under_another_name_gets_nothing() {
    let home = WeirHomeDir::new();
    // No tokens: the server makes an admin token and embeds it in its own page.
    let server = serve(&home, None);
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let get = |host: &str, path: &str| {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", server.url))
            .header("host", host)
            .send()
            .unwrap()
    };
    // A DNS-rebinding page: its own name, resolving to 127.0.0.1, with same-origin headers.
    let rebound = format!("rebind.example:{port}");
    for path in ["/", "/api/dashboard", "/api/instances"] {
        let response = get(&rebound, path);
        assert_eq!(response.status().as_u16(), 421, "{path}");
        let text = response.text().unwrap();
        assert!(
            !text.contains("weir-page-token"),
            "the token page leaked: {text}"
        );
        assert!(text.contains("answers only to localhost"), "{text}");
    }
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/runs", server.url))
        .header("host", &rebound)
        .header("origin", format!("http://{rebound}"))
        .body(r#"{"workflow": "ci-smoke"}"#)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 421);
    assert_eq!(
        home.ok(&["runs", "--json"]).trim(),
        "[]",
        "nothing was started"
    );
    // Under its own names it answers.
    assert_eq!(
        get(&format!("localhost:{port}"), "/").status().as_u16(),
        200
    );
    assert_eq!(
        get(&format!("127.0.0.1:{port}"), "/api/dashboard")
            .status()
            .as_u16(),
        200
    );
    drop(server);
}

#[test]
fn malformed_bodies_get_a_reason_and_change_nothing() {
    let home = WeirHomeDir::new();
    let server = serve(&home, Some(TOKENS));
    let cases: [(&str, &str, &str); 8] = [
        ("/api/runs", "{oops", "malformed request body"),
        (
            "/api/runs",
            r#"{"workflow": "ci-smoke", "backend": "mars"}"#,
            "`backend` is `local` or `kubernetes`, not `mars`",
        ),
        (
            "/api/runs",
            r#"{"workflow": "ci-smoke", "colour": 1}"#,
            "unknown field `colour`",
        ),
        (
            "/api/runs",
            r#"{"workflow": "no-such"}"#,
            "no shipped workflow `no-such`",
        ),
        (
            "/api/runs",
            r#"{"workflow": "ci-smoke", "variables": {"threshold": -1}}"#,
            "must be at least 0",
        ),
        (
            "/api/instances",
            r#"{"service": 3}"#,
            "malformed request body",
        ),
        (
            "/api/instances",
            r#"{"service": "kafak"}"#,
            "the catalog has no service `kafak`",
        ),
        (
            "/api/instances",
            r#"{"service": "kafka", "params": {"partitions": "many"}}"#,
            "expected a whole number",
        ),
    ];
    for (path, body, reason) in cases {
        let (status, reply) = call(&server, "POST", path, Some("op-token"), Some(body));
        assert!(
            (400..500).contains(&status),
            "{path} {body}: {status} {reply}"
        );
        assert!(
            reply.to_string().contains(reason),
            "{path} {body}: expected `{reason}` in {reply}"
        );
    }
    let (status, _) = call(
        &server,
        "POST",
        "/api/runs/nope/approve",
        Some("op-token"),
        None,
    );
    assert_eq!(status, 404);
    let (status, reply) = call(&server, "GET", "/api/runs/nope/topologies", None, None);
    assert_eq!(status, 404, "{reply}");
    assert!(reply.to_string().contains("no run `nope`"), "{reply}");
    for (query, reason) in [
        ("tail=many", "tail=`many`: expected a number of lines"),
        ("tail=20000", "at most 10000 lines"),
    ] {
        let path = format!("/api/instances/nobody/log?{query}");
        let (status, reply) = call(&server, "GET", &path, Some("op-token"), None);
        assert_eq!(status, 400, "{path}: {reply}");
        assert!(reply.to_string().contains(reason), "{path}: {reply}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(home.ok(&["runs", "--json"]).trim(), "[]");
    assert!(home.instances().is_empty());
    drop(server);
}

#[test]
fn refuses_to_listen_beyond_loopback_without_tokens() {
    let home = WeirHomeDir::new();
    let output = home
        .command(&["serve", "--addr", "0.0.0.0:0"])
        .env_remove("WEIR_TOKENS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("refusing to listen on 0.0.0.0:0 without access tokens"));
}

#[test]
fn a_run_awaiting_approval_survives_a_server_restart() {
    let home = WeirHomeDir::new();
    let server = serve(&home, Some(TOKENS));
    let (status, reply) = call(
        &server,
        "POST",
        "/api/runs",
        Some("op-token"),
        Some(
            r#"{"workflow": "ci-smoke", "variables": {"automatic_kill": false, "execution_duration": "1s", "prefix": "restart"}}"#,
        ),
    );
    assert_eq!(status, 202, "{reply}");
    let id = reply["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(120), || {
        let (_, run) = call(&server, "GET", &format!("/api/runs/{id}"), None, None);
        (run["state"] == "awaiting-approval").then_some(())
    })
    .expect("the run awaits approval");
    drop(server); // kills `weir serve`; the run is a process of its own

    let restarted = serve(&home, Some(TOKENS));
    let (_, run) = call(&restarted, "GET", &format!("/api/runs/{id}"), None, None);
    assert_eq!(
        run["state"], "awaiting-approval",
        "still listed and approvable: {run}"
    );
    assert!(!home.instances().is_empty(), "its services are still up");
    let (status, _) = call(
        &restarted,
        "POST",
        &format!("/api/runs/{id}/approve"),
        Some("op-token"),
        None,
    );
    assert_eq!(status, 200);
    let finished = eventually(Duration::from_secs(120), || {
        let (_, run) = call(&restarted, "GET", &format!("/api/runs/{id}"), None, None);
        (run["state"] == "succeeded").then_some(run)
    })
    .expect("the approved run finishes");
    assert!(finished["topics"]["smoke-raw"].as_i64().unwrap() > 0);
    eventually(Duration::from_secs(30), || {
        home.instances().is_empty().then_some(())
    })
    .expect("torn down");
}

#[test]
fn a_person_launches_watches_and_approves_a_workflow_in_the_browser() {
    let home = WeirHomeDir::new();
    let server = serve(&home, None);
    let screenshots = artifacts_dir();
    let url = format!("{}/", server.url);
    let seen = browse(
        &server,
        "ui-flow.cjs",
        &[&url, screenshots.to_str().unwrap()],
    );
    assert_eq!(seen["before"]["c-today"], 0, "{seen}");
    assert_eq!(
        seen["waiting"]["c-pending"], 1,
        "pending request counted: {seen}"
    );
    assert!(
        seen["waiting"]["c-instances"].as_u64().unwrap() >= 4,
        "{seen}"
    );
    assert!(
        seen["approvalText"]
            .as_str()
            .unwrap()
            .contains("approve to tear it down"),
        "{seen}"
    );
    // The task graph shows the approval waiting, on the run's page and on the runs list.
    let waiting = &seen["graphWhileWaiting"];
    assert_eq!(waiting["approve"], "awaiting-approval", "{seen}");
    assert_eq!(waiting["kafka"], "succeeded", "{seen}");
    assert_eq!(waiting["teardown"], "pending", "{seen}");
    assert_eq!(
        waiting.as_object().unwrap().len(),
        10,
        "every task drawn: {seen}"
    );
    assert_eq!(
        seen["runsWaiting"],
        json!([[seen["run"], "approve or reject approve"]]),
        "{seen}"
    );
    assert!(
        seen["liveLog"]["source"]
            .as_str()
            .unwrap()
            .starts_with("live")
            && seen["liveLog"]["length"].as_u64() > Some(0),
        "{seen}"
    );
    let after = seen["graphAfter"].as_object().unwrap();
    assert!(after.values().all(|s| s == "succeeded"), "{seen}");
    assert!(
        seen["keptLog"]["source"].as_str().unwrap().contains("kept")
            && seen["keptLog"]["length"].as_u64() > Some(0),
        "{seen}"
    );
    assert_eq!(seen["after"]["c-today"], 1, "{seen}");
    assert_eq!(seen["after"]["c-pending"], 0, "{seen}");
    assert_eq!(seen["after"]["c-running"], 0, "{seen}");
    let states = seen["taskStates"].as_array().unwrap();
    assert!(states.iter().all(|s| s == "succeeded"), "{seen}");
    let (_, run) = call(
        &server,
        "GET",
        &format!("/api/runs/{}", seen["run"].as_str().unwrap()),
        None,
        None,
    );
    assert_eq!(run["state"], "succeeded");
    eventually(Duration::from_secs(30), || {
        home.instances().is_empty().then_some(())
    })
    .expect("torn down");
    for shot in [
        "ui-launch-form.png",
        "ui-awaiting-approval.png",
        "ui-run-succeeded.png",
        "ui-dashboard.png",
        "ui-task-graph.png",
    ] {
        assert!(screenshots.join(shot).is_file(), "{shot}");
    }
    assert_eq!(json!(seen["before"]["c-catalog"]), json!(6));
}

#[test]
fn a_demo_run_shows_its_three_charts_live_on_its_page_and_its_wall_screen() {
    let home = WeirHomeDir::new();
    let server = serve(&home, Some(TOKENS));
    let launch = json!({"workflow": "bitcoin-yuan", "variables": {
        "source_kind": "replay", "rate_pointer": "/Close", "rate_unit": "USD", "poll_interval": "300ms",
        "rate_title": "BTC/USD monthly close (replayed, not live)",
        "execution_duration": "60s", "threshold": 0.2}});
    let (status, launched) = call(
        &server,
        "POST",
        "/api/runs",
        Some("op-token"),
        Some(&launch.to_string()),
    );
    assert_eq!(status, 202, "{launched}");
    let run = launched["id"].as_str().expect("a run id").to_string();

    let screenshots = artifacts_dir();
    let url = format!("{}/", server.url);
    let seen = browse(
        &server,
        "run-screen.cjs",
        &[&url, &run, screenshots.to_str().unwrap()],
    );

    // The run page and the wall screen show the demo's rates, variations and notifications,
    // the notifications as markers.
    for place in ["runPage", "screen"] {
        let windows = seen[place]["windows"].as_array().unwrap();
        let window = |title: &str| {
            windows
                .iter()
                .find(|w| w["title"].as_str().unwrap().starts_with(title))
                .unwrap_or_else(|| panic!("no `{title}` window on the {place}: {seen}"))
                .clone()
        };
        // Kinds that fit the data, axes named with the units the launch gave.
        for (title, kind, y_label) in [
            ("BTC/USD monthly close (replayed", "line", "USD per BTC"),
            ("Variation", "line", "change (USD)"),
            ("Notifications", "markers", "change (USD)"),
        ] {
            assert_eq!(window(title)["kind"], kind, "{seen}");
            assert_eq!(window(title)["yLabel"], y_label, "{seen}");
            assert_eq!(window(title)["xLabel"], "time", "{seen}");
        }
    }
    let screen = &seen["screen"];
    assert!(screen["title"].as_str().unwrap().contains(&run), "{screen}");
    assert_eq!(screen["state"], "running", "{screen}");
    assert_eq!(
        screen["headerHidden"], true,
        "a wall screen has no navigation"
    );
    let windows = screen["windows"].as_array().unwrap();
    assert!(
        windows.iter().all(|w| w["top"] == windows[0]["top"]),
        "three windows side by side: {screen}"
    );
    assert!(
        windows.iter().all(|w| w["received"].as_u64() > Some(0)),
        "every window, notifications included, has data: {screen}"
    );
    let points = screen["livePoints"].as_array().unwrap();
    assert!(points[1].as_u64() > points[0].as_u64(), "{screen}");
    // The monitoring panel shows the dataflow as its runner reports it, rates included.
    let monitored = seen["monitor"].as_array().unwrap();
    let dataflow = monitored
        .iter()
        .find(|row| row["topology"] == "submit-dataflow")
        .unwrap_or_else(|| panic!("the dataflow is on the panel: {seen}"));
    assert_eq!(dataflow["state"], "running", "{dataflow}");
    assert!(dataflow["consumed"].as_u64() > Some(0), "{dataflow}");
    assert!(dataflow["inRate"].as_f64() > Some(0.0), "{dataflow}");
    assert!(dataflow["outRate"].as_f64() > Some(0.0), "{dataflow}");
    assert!(dataflow["samples"].as_u64() > Some(0), "{dataflow}");
    assert!(
        dataflow["p99Text"].as_str().unwrap().ends_with(" ms"),
        "{dataflow}"
    );
    assert!(
        dataflow["lag"].as_u64().is_some() || dataflow["lagText"] == "unavailable",
        "a lag is a number or says it is unavailable: {dataflow}"
    );
    assert!(
        monitored
            .iter()
            .all(|row| row["topology"] != "submit-candles"),
        "a skipped topology is not on the panel: {seen}"
    );
    let counts = &seen["monitorConsumed"];
    assert!(
        counts[1].as_u64() > counts[0].as_u64(),
        "updates live: {seen}"
    );
    // The topics page measures what the source writes: one document every 300 ms.
    let written = seen["topicRates"]["BitCoinExchangeTopic"].as_f64().unwrap();
    assert!(written > 0.5 && written < 20.0, "{seen}");
    for shot in [
        "ui-run-live-charts.png",
        "ui-run-screen.png",
        "ui-run-monitor.png",
    ] {
        assert!(screenshots.join(shot).is_file(), "{shot}");
    }

    // The run then ends by itself and takes its chart server with it.
    let finished = eventually(Duration::from_secs(180), || {
        let (_, run) = call(&server, "GET", &format!("/api/runs/{run}"), None, None);
        (run["state"] != "running").then_some(run)
    })
    .expect("the run ends");
    assert_eq!(finished["state"], "succeeded", "{finished}");
    // Once its runners are gone, the panel has no figure for them and says why.
    let (status, readings) = call(
        &server,
        "GET",
        &format!("/api/runs/{run}/topologies"),
        None,
        None,
    );
    assert_eq!(status, 200, "{readings}");
    let dataflow = &readings[0];
    assert_eq!(dataflow["task"], "submit-dataflow", "{readings}");
    assert!(dataflow["status"].is_null(), "{readings}");
    assert!(
        dataflow["unavailable"]
            .as_str()
            .unwrap()
            .contains("torn down"),
        "{readings}"
    );
}

/// `weir down --all` when dropped, so that a failing test leaves no Kafka behind.
struct DownOnDrop<'a>(&'a WeirHomeDir);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["down", "--all"]);
    }
}

#[test]
fn the_topic_browser_reproduces_a_filtered_link_escapes_values_and_tails_what_kcat_writes() {
    use std::io::BufRead;
    let home = WeirHomeDir::new();
    let _down = DownOnDrop(&home);
    home.ok(&["up", "kafka", "--name", "browse-kafka"]);
    let brokers = (home.instances().into_iter())
        .find(|i| i["name"] == "browse-kafka")
        .and_then(|i| i["endpoint"].as_str().map(str::to_string))
        .expect("the Kafka instance is listed");
    let topic = "hand-made";
    home.ok(&[
        "topics",
        "create",
        "--kafka",
        "browse-kafka",
        "--partitions",
        "2",
        topic,
    ]);
    let mut lines: Vec<String> = (0..200).map(|n| json!({ "n": n }).to_string()).collect();
    lines.push(
        json!({"n": 250, "note": "<script>window.pwned=1</script><img src=x onerror=window.pwned=1>"})
            .to_string(),
    );
    kcat_produce(&brokers, topic, &lines, &[]);
    let server = serve(&home, Some(TOKENS));

    // The REST API: the same view as JSON; writing needs the operator role.
    let path = format!(
        "/api/instances/browse-kafka/topics/{topic}/messages?where=n%20%25%2050%20%3D%3D%200"
    );
    let (status, browsed) = call(&server, "GET", &path, Some("view-token"), None);
    assert_eq!(status, 200, "{browsed}");
    let mut found: Vec<i64> = (browsed["messages"].as_array().unwrap().iter())
        .map(|m| m["value"]["data"]["n"].as_i64().unwrap())
        .collect();
    // Across partitions, messages of one millisecond have no order of their own.
    found.sort_unstable();
    assert_eq!(found, [0, 50, 100, 150, 250]);
    let post = format!("/api/instances/browse-kafka/topics/{topic}/messages");
    let body = r#"{"key": "by-hand", "value": "{\"n\": 300}"}"#;
    let (refused, _) = call(&server, "POST", &post, Some("view-token"), Some(body));
    assert_eq!(refused, 403);
    let (status, landed) = call(&server, "POST", &post, Some("op-token"), Some(body));
    assert_eq!(status, 200, "{landed}");
    assert!(landed["offset"].as_i64().is_some(), "{landed}");
    let (status, missing) = call(
        &server,
        "GET",
        "/api/instances/browse-kafka/topics/hand-mad/messages",
        Some("view-token"),
        None,
    );
    assert_eq!(status, 404);
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `hand-made`"),
        "{missing}"
    );

    // The page, from a link carrying the filter, opened in two fresh browsers.
    let marker = format!("tail-{}", std::process::id());
    let link = format!(
        "{}/#/instances/browse-kafka/topics/{topic}?where=n%20%25%2050%20%3D%3D%200&limit=10",
        server.url
    );
    let screenshot = artifacts_dir().join("topic-browser.png");
    let mut page = std::process::Command::new("node")
        .arg(repo_root().join("tests/browser/topic-browser.cjs"))
        .args([&link, screenshot.to_str().unwrap(), &marker])
        .env("NODE_PATH", playwright_node_path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = std::io::BufReader::new(page.stdout.take().unwrap()).lines();
    let ready: Value = serde_json::from_str(&said.next().unwrap().unwrap()).unwrap();
    assert_eq!(ready["ready"], true);
    // One message the filter refuses, then one it keeps.
    let produced_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    kcat_produce(
        &brokers,
        topic,
        &[
            json!({"n": 1001, "marker": "filtered-out"}).to_string(),
            json!({"n": 1000, "marker": marker}).to_string(),
        ],
        &[],
    );
    let seen: Value = serde_json::from_str(&said.next().unwrap().unwrap()).unwrap();
    assert!(page.wait().unwrap().success());

    let first = seen["firstRows"].as_array().unwrap();
    assert_eq!(
        first.len(),
        6,
        "250, 300 (by hand), 150, 100, 50 and 0: {seen}"
    );
    assert_eq!(
        seen["firstRows"], seen["secondRows"],
        "the link reproduces the view"
    );
    assert!(
        seen["summary"].as_str().unwrap().contains("6 shown"),
        "{seen}"
    );
    assert_eq!(
        seen["injected"],
        json!({"pwned": false, "elements": 0, "shownAsText": true}),
        "a value holding markup is shown, never run"
    );
    let after = seen["afterTail"].as_array().unwrap();
    assert_eq!(
        after.len(),
        7,
        "only the message the filter keeps is tailed: {seen}"
    );
    assert!(after[0].as_str().unwrap().contains(&marker), "{seen}");
    let latency = seen["tailedAt"].as_i64().unwrap() - produced_at;
    eprintln!("the tailed message appeared {latency} ms after kcat was started");
    assert!(screenshot.is_file());
}
