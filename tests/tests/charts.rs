//! The chart server driven by real clients: the `visdom` Python package, a Kafka topic, and
//! headless Chromium.

use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::{
    artifacts_dir, eventually, kafka, playwright_node_path, produce, unique, visdom_python,
    ChartServer, RealVisdom,
};

fn points(window: &Value, series: usize) -> Vec<(f64, f64)> {
    window["series"][series]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// Runs a Python script using the real `visdom` client; returns the JSON lines it printed.
fn visdom_script(script: &str) -> Vec<Value> {
    let output = std::process::Command::new(visdom_python())
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn the_visdom_python_client_creates_appends_checks_and_closes() {
    let server = ChartServer::start(&[]);
    let port = server.url.rsplit(':').next().unwrap();
    let script = format!(
        r#"
import json, numpy as np, visdom
vis = visdom.Visdom(server="http://127.0.0.1", port={port}, env="demo", use_incoming_socket=False, raise_exceptions=True)
win = vis.line(Y=np.array([478000.0, 478060.5]), X=np.array([1, 2]), opts=dict(title="BTC rate (CNY)", xlabel="tick", ylabel="CNY"))
for i in range(3, 101):
    vis.line(Y=np.array([478000.0 + i]), X=np.array([i]), win=win, update="append")
vis.line(Y=np.array([5.0, 6.0]), X=np.array([1, 2]), win="variations", opts=dict(title="variations"))
print(json.dumps(dict(win=win, exists=vis.win_exists(win), missing=vis.win_exists("nope"), envs=vis.get_env_list())))
vis.close(win="variations")
print(json.dumps(dict(closed=vis.win_exists("variations"))))
"#
    );
    let printed = visdom_script(&script);
    let [first, second] = printed.as_slice() else {
        panic!("two lines expected: {printed:?}")
    };
    assert_eq!(first["exists"], true);
    assert_eq!(first["missing"], false);
    assert!(first["envs"].as_array().unwrap().contains(&json!("demo")));
    assert_eq!(second["closed"], false, "closed windows no longer exist");

    let win = first["win"].as_str().unwrap();
    let window = server.get_json(&format!("/api/windows/demo/{win}?points=0"));
    assert_eq!(window["title"], "BTC rate (CNY)");
    assert_eq!(window["y_label"], "CNY");
    let got = points(&window, 0);
    assert_eq!(got.len(), 100);
    assert_eq!(got[0], (1.0, 478000.0));
    assert_eq!(got[1], (2.0, 478060.5));
    assert_eq!(got[99], (100.0, 478100.0));
    let listed = server.get_json("/api/windows");
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // Snapshots of the same data.
    let png = reqwest::blocking::get(format!(
        "{}/api/windows/demo/{win}/snapshot.png",
        server.url
    ))
    .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let svg = reqwest::blocking::get(format!(
        "{}/api/windows/demo/{win}/snapshot.svg",
        server.url
    ))
    .unwrap()
    .text()
    .unwrap();
    assert!(svg.contains("BTC rate (CNY)"));
}

#[test]
fn window_data_round_trips_in_visdoms_own_format() {
    let server = ChartServer::start(&[]);
    let port = server.url.rsplit(':').next().unwrap();
    // What a Visdom user writes: read a window's data back, copy it, restore it.
    let script = format!(
        r#"
import json, numpy as np, visdom
vis = visdom.Visdom(server="http://127.0.0.1", port={port}, env="demo", use_incoming_socket=False, raise_exceptions=True)
win = vis.line(Y=np.array([478000.0, 478060.5, 477990.25]), X=np.array([1, 2, 3]), opts=dict(title="BTC rate (CNY)", xlabel="tick", ylabel="CNY"))
data = vis.get_window_data(win)
window = json.loads(data)
before = vis.win_hash(win, env="demo")
vis.set_window_data(data, win="copy")
copy = json.loads(vis.get_window_data("copy"))
vis.line(Y=np.array([478100.0]), X=np.array([4]), win=win, update="append")
after = vis.win_hash(win, env="demo")
every = json.loads(vis.get_window_data())
print(json.dumps(dict(win=win, window=window, copy=copy, before=before, after=after,
                      missing=vis.win_hash("nope", env="demo"), every=sorted(every))))
"#
    );
    let got = visdom_script(&script).pop().expect("the script's result");
    let window = &got["window"];
    let win = got["win"].as_str().unwrap();
    assert_eq!(window["command"], "window");
    assert_eq!(window["id"], win);
    assert_eq!(window["title"], "BTC rate (CNY)");
    // The expression from the issue that raised KeyError before.
    assert_eq!(
        window["content"]["data"][0]["x"],
        json!([1.0, 2.0, 3.0]),
        "{window}"
    );
    assert_eq!(
        window["content"]["data"][0]["y"],
        json!([478000.0, 478060.5, 477990.25])
    );
    assert_eq!(window["content"]["layout"]["xaxis"]["title"], "tick");
    // The copy holds the same content under its own id.
    assert_eq!(got["copy"]["content"], window["content"]);
    assert_eq!(got["copy"]["id"], "copy");
    let copied = server.get_json("/api/windows/demo/copy?points=0");
    assert_eq!(copied["title"], "BTC rate (CNY)");
    assert_eq!(points(&copied, 0)[2], (3.0, 477990.25));
    // win_hash: an MD5 that changes with the content; none for a missing window.
    let (before, after) = (
        got["before"].as_str().unwrap(),
        got["after"].as_str().unwrap(),
    );
    assert_eq!(before.len(), 32);
    assert_ne!(before, after, "the hash follows the content");
    assert_eq!(got["missing"], Value::Null);
    assert_eq!(got["every"], json!(["copy", win]));
}

/// What a Visdom user does with text, bar and properties windows and environments; prints
/// what the server answered, comparable between servers.
fn text_bar_properties_script(port: u16) -> String {
    format!(
        r#"
import json, numpy as np, visdom
vis = visdom.Visdom(server="http://127.0.0.1", port={port}, env="demo", use_incoming_socket=False, raise_exceptions=True)
log = vis.text("12:00:01 rate 478000.0", win="notifications", opts=dict(title="Notifications"))
vis.text("12:00:07 variation -61.5", win=log, append=True)
vis.text("12:00:13 variation 80.0", win=log, append=True)
bars = vis.bar(X=np.array([10, 9, 2]), win="counts", opts=dict(title="Records per topic", rownames=["rates", "variations", "notifications"]))
props = vis.properties([dict(type="text", name="state", value="running"), dict(type="number", name="threshold", value="50")], win="run", opts=dict(title="Run"))
vis.line(Y=np.array([1.0, 2.0]), X=np.array([1, 2]), win="scratch", env="scratch")
envs = sorted(e for e in vis.get_env_list() if e in ("demo", "scratch"))
saved = json.loads(vis.save(["demo"]))
vis.delete_env("scratch")
after_delete = sorted(e for e in vis.get_env_list() if e in ("demo", "scratch"))
windows = {{w: json.loads(vis.get_window_data(w)) for w in (log, bars, "run")}}
def essence(w):
    if w["type"] == "plot":
        return dict(type=w["type"], title=w["title"], traces=[dict(x=list(t["x"]), y=[float(v) for v in t["y"]], type=t["type"]) for t in w["content"]["data"]])
    return dict(type=w["type"], title=w["title"], content=w["content"])
print(json.dumps(dict(envs=envs, saved=saved, after_delete=after_delete, exists=vis.win_exists(log),
                      windows={{w: essence(window) for w, window in windows.items()}})))
"#
    )
}

#[test]
fn text_bar_and_properties_windows_and_saved_environments_answer_as_visdom_does() {
    let env_path = tempfile::tempdir().unwrap();
    let env_arg = env_path.path().to_str().unwrap();
    let weir = ChartServer::start(&["--env-path", env_arg]);
    let weir_port: u16 = weir.url.rsplit(':').next().unwrap().parse().unwrap();
    let ours = visdom_script(&text_bar_properties_script(weir_port))
        .pop()
        .expect("the script's result");
    let visdom = RealVisdom::start();
    let theirs = visdom_script(&text_bar_properties_script(visdom.port))
        .pop()
        .expect("the script's result against Visdom");
    assert_eq!(ours, theirs, "Weir and Visdom answer the same script alike");

    // What the answers hold, spelled out.
    assert_eq!(ours["envs"], json!(["demo", "scratch"]));
    assert_eq!(ours["saved"], json!(["demo"]));
    assert_eq!(ours["after_delete"], json!(["demo"]));
    let windows = &ours["windows"];
    assert_eq!(
        windows["notifications"]["content"],
        "12:00:01 rate 478000.0<br>12:00:07 variation -61.5<br>12:00:13 variation 80.0"
    );
    assert_eq!(
        windows["counts"]["traces"][0]["x"],
        json!(["rates", "variations", "notifications"])
    );
    assert_eq!(windows["counts"]["traces"][0]["y"], json!([10.0, 9.0, 2.0]));
    assert_eq!(windows["run"]["content"][1]["name"], "threshold");

    // The page's API and pictures show them too.
    let log = weir.get_json("/api/windows/demo/notifications");
    assert_eq!(log["kind"], "text");
    assert_eq!(log["text"]["appended"], 3);
    let png = reqwest::blocking::get(format!("{}/api/windows/demo/counts/snapshot.png", weir.url))
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&png[1..4], b"PNG");

    // The saved environment comes back in a new server on the same env path.
    drop(weir);
    let restarted = ChartServer::start(&["--env-path", env_arg]);
    let again = restarted.get_json("/api/windows/demo/notifications");
    assert_eq!(again["text"]["entries"], log["text"]["entries"]);
    let counts = restarted.get_json("/api/windows/demo/counts");
    assert_eq!(
        counts["categories"],
        json!(["rates", "variations", "notifications"])
    );
    assert!(
        restarted
            .post("/win_exists", &json!({"win": "scratch", "eid": "scratch"}))
            .text()
            .unwrap()
            == "false",
        "a deleted environment is not saved"
    );
}

#[test]
fn windows_fed_from_a_kafka_topic_hold_the_topic_values() {
    let topic = unique("chart-rates");
    // As the catalog writes it: JSON, so a title may hold commas.
    let spec = json!({"topic": topic, "y": "rate", "x": "timestamp", "title": "BTC rate (CNY, live)", "win": "rates"})
        .to_string();
    let server = ChartServer::start(&["--brokers", kafka(), "--window", &spec]);
    let documents: Vec<String> = (0..5)
        .map(|i| json!({"rate": format!("{}", 478000 + i * 10), "timestamp": 1000 + i}).to_string())
        .collect();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(produce(kafka(), &topic, &documents));
    let window = eventually(Duration::from_secs(30), || {
        let window = server.get_json("/api/windows/main/rates");
        (window["series"][0]["points"].as_array()?.len() >= 5).then_some(window)
    })
    .expect("five points charted");
    assert_eq!(
        points(&window, 0),
        vec![
            (1000.0, 478000.0),
            (1001.0, 478010.0),
            (1002.0, 478020.0),
            (1003.0, 478030.0),
            (1004.0, 478040.0)
        ]
    );
    assert_eq!(window["title"], "BTC rate (CNY, live)");
}

#[test]
fn retention_bounds_each_series_and_display_is_decimated() {
    let server = ChartServer::start(&["--retention", "500"]);
    for batch in 0..10 {
        let xs: Vec<f64> = (0..200).map(|i| f64::from(batch * 200 + i)).collect();
        let ys: Vec<f64> = xs.iter().map(|x| x % 13.0).collect();
        let response = server.post(
            "/update",
            &json!({"eid": "main", "win": "w", "name": "s", "append": true, "data": [{"x": xs, "y": ys, "type": "scatter", "name": "s"}]}),
        );
        assert!(response.status().is_success());
    }
    let full = server.get_json("/api/windows/main/w?points=0");
    let kept = points(&full, 0);
    assert_eq!(full["series"][0]["appended"], 2000);
    assert_eq!(kept.len(), 500, "only the newest 500 points are kept");
    assert_eq!(kept[0].0, 1500.0);
    let decimated = server.get_json("/api/windows/main/w?points=100");
    assert!(points(&decimated, 0).len() <= 100);
    let bad = server.post(
        "/events",
        &json!({"eid": "main", "win": "h", "data": [{"z": [[1]], "type": "heatmap"}]}),
    );
    assert_eq!(bad.status().as_u16(), 422);
    assert!(bad.text().unwrap().contains("`heatmap` is not supported"));
}

#[test]
fn a_browser_sees_points_arrive_live() {
    let server = ChartServer::start(&["--retention", "3000"]);
    server.post(
        "/events",
        &json!({"eid": "main", "win": "live", "opts": {"title": "Live BTC rate"}, "layout": {},
        "data": [{"x": [0], "y": [478000], "type": "scatter", "name": "rate"}]}),
    );
    // More points than the server keeps: the page draws the latest and says so.
    let (xs, ys): (Vec<u32>, Vec<f64>) = (0..5000)
        .map(|i| (i, 172.216 + 0.029 * f64::from(i)))
        .unzip();
    server.post(
        "/events",
        &json!({"eid": "main", "win": "many", "opts": {"title": "Many points"}, "layout": {},
        "data": [{"x": xs, "y": ys, "type": "scatter", "name": "close"}]}),
    );
    let url = server.url.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for i in 1..600 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let y = 478000.0 + 50.0 * (f64::from(i) / 10.0).sin();
                let _ = client
                    .post(format!("{url}/update"))
                    .body(
                        json!({"eid": "main", "win": "live", "name": "rate", "append": true,
                        "data": [{"x": [i], "y": [y], "type": "scatter", "name": "rate"}]})
                        .to_string(),
                    )
                    .send();
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let screenshot = artifacts_dir().join("charts-live.png");
    let output = std::process::Command::new("node")
        .arg(weir_tests::repo_root().join("tests/browser/charts-live.cjs"))
        .arg(format!("{}/?kiosk=1", server.url))
        .arg(&screenshot)
        .env("NODE_PATH", playwright_node_path())
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    feeding.join().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert!(result["livePoints"].as_u64().unwrap() >= 20, "{result}");
    assert_eq!(result["windows"], 2);
    let many = &result["drawn"]["Many points"];
    let legend = many["legend"].as_str().unwrap();
    assert_eq!(legend, "close (latest 3,000 of 5,000)", "{result}");
    // Ticks fall on round values: evenly spaced by 1, 2 or 5 times a power of ten.
    for axis in ["yTicks", "xTicks"] {
        let ticks: Vec<f64> = (many[axis].as_str().unwrap().split(','))
            .map(|t| t.parse().unwrap())
            .collect();
        assert!(ticks.len() >= 3, "{axis}: {result}");
        let step = ticks[1] - ticks[0];
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6),
            "{axis} step {step}: {result}"
        );
        for tick in &ticks {
            let multiple = tick / step;
            assert!(
                (multiple - multiple.round()).abs() < 1e-6,
                "{axis}: {result}"
            );
        }
    }
    let live = result["drawn"]["Live BTC rate"]["legend"].as_str().unwrap();
    assert!(
        live.starts_with("rate (") && !live.contains("latest"),
        "{result}"
    );
    assert_eq!(result["kiosk"], true);
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 1000,
        "screenshot saved at {}",
        screenshot.display()
    );
}
