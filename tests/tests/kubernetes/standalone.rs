//! `weir up` and `weir down` managing standalone instances in a namespace of their own.

use super::*;

#[test]
fn up_and_down_manage_standalone_instances_in_their_namespace() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let namespace = format!("weir-test-{}", std::process::id());
    let up = up_in(
        &home,
        &namespace,
        &["kafka", "--name", "k1", "--set", "mode=kraft"],
    );
    assert!(up.contains("k1 kafka ready"), "{up}");
    let set = sandbox
        .kubectl_json(&["get", "statefulset", "k1", "-n", &namespace])
        .expect("the broker's StatefulSet");
    assert_eq!(set["status"]["readyReplicas"], 1);
    assert_eq!(set["metadata"]["labels"]["app.kubernetes.io/name"], "kafka");
    // Recorded like a local instance: `weir instances` lists it, checked against the cluster.
    let listed = instances(&home);
    let k1 = listed
        .iter()
        .find(|i| i["name"] == "k1")
        .unwrap_or_else(|| panic!("k1 is not listed: {listed:?}"));
    assert_eq!(k1["backend"], "kubernetes");
    assert_eq!(k1["namespace"], namespace.as_str());
    assert_eq!(k1["state"], "running");
    assert_eq!(k1["endpoint"], "k1:9092");

    let down = weir(
        &home,
        &[
            "down",
            "--backend",
            "kubernetes",
            "--namespace",
            &namespace,
            "k1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(sandbox
        .kubectl_json(&["get", "statefulset", "k1", "-n", &namespace])
        .is_none());
    assert!(
        instances(&home).iter().all(|i| i["name"] != "k1"),
        "a stopped instance is no longer listed"
    );
    sandbox.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
}
