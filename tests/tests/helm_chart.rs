//! The Helm chart in `deploy/helm/weir`: `helm lint` passes, and `helm template` renders
//! exactly the reviewed golden files for the default values and for an Ingress with an
//! existing Secret and no volume. A chart without tokens is refused with the reason.
//!
//! Regenerate the golden files after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --release --workspace --test helm_chart`.

use std::path::PathBuf;
use std::process::{Command, Output};

use weir_tests::{helm_bin, repo_root};

fn chart() -> PathBuf {
    repo_root().join("deploy/helm/weir")
}

fn helm(args: &[&str]) -> Output {
    Command::new(helm_bin())
        .args(args)
        .output()
        .expect("run helm")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_chart_lints_clean() {
    let chart = chart();
    let output = helm(&[
        "lint",
        "--strict",
        chart.to_str().unwrap(),
        "--set",
        "auth.tokens.operator=lint-operator-token",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("0 chart(s) failed"),
        "{}",
        text(&output)
    );
}

/// Each case: a golden file and the values it is rendered with.
const CASES: &[(&str, &[&str])] = &[
    (
        "default.yaml",
        &[
            "--set",
            "auth.tokens.operator=operator-token",
            "--set",
            "auth.tokens.viewer=viewer-token",
        ],
    ),
    (
        "ingress-existing-secret.yaml",
        &[
            "--set",
            "auth.existingSecret=team-tokens",
            "--set",
            "ingress.enabled=true",
            "--set",
            "ingress.host=weir.team.example",
            "--set",
            "ingress.tlsSecret=weir-tls",
            "--set",
            "persistence.enabled=false",
            "--set",
            "image.tag=0.2.0",
        ],
    ),
];

#[test]
fn rendered_manifests_match_the_golden_files() {
    let chart = chart();
    let golden_dir = repo_root().join("tests/golden/helm");
    let mut mismatched = Vec::new();
    for (golden, values) in CASES {
        let mut args = vec![
            "template",
            "weir",
            chart.to_str().unwrap(),
            "--namespace",
            "weir",
        ];
        args.extend_from_slice(values);
        let output = helm(&args);
        assert!(output.status.success(), "{golden}: {}", text(&output));
        let rendered = String::from_utf8(output.stdout).expect("UTF-8 manifests");
        let path = golden_dir.join(golden);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        if expected != rendered {
            mismatched.push(golden);
        }
    }
    assert!(
        mismatched.is_empty(),
        "rendered manifests differ from {mismatched:?}; review and regenerate with UPDATE_GOLDEN=1"
    );
}

#[test]
fn a_chart_without_tokens_is_refused_with_the_reason() {
    let chart = chart();
    let output = helm(&["template", "weir", chart.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("the portal needs access tokens"),
        "{}",
        text(&output)
    );
    let output = helm(&[
        "template",
        "weir",
        chart.to_str().unwrap(),
        "--set",
        "auth.tokens.owner=some-token",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("auth.tokens.owner: a role is viewer, operator or admin"),
        "{}",
        text(&output)
    );
}
