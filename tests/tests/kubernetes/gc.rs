//! `weir gc` cleaning up after a run whose process was killed.

use super::*;

#[test]
fn gc_deletes_the_namespace_of_a_killed_run() {
    let home = WeirHomeDir::new();
    let (mut child, id, namespace) = start_ci_smoke(&home, &["execution_duration=5m"]);
    ready_pods(&namespace, &["replay-source"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(KubeSandbox::get().namespace_exists(&namespace));

    let output = weir(&home, &["gc", "--backend", "kubernetes"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("deleted namespace {namespace}")),
        "{stdout}"
    );
    assert_nothing_left(&namespace, &home.log());
    assert_eq!(home.run_record(&id)["state"], "failed");
}
