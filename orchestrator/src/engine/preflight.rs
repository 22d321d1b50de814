//! Before anything starts: the live sources a run will start must have an address this
//! machine can resolve. Offline, a run would otherwise start ZooKeeper and Kafka and wait a
//! whole grace period for a source that cannot publish; instead it ends at once, naming the
//! workflow's offline alternative (never applying it by itself).

use std::time::Duration;

use crate::workflow::{Action, OfflineAlternative, SourceKind, Workflow};

/// How long a name may take to resolve before the machine is taken for offline.
const RESOLVE_WITHIN: Duration = Duration::from_secs(5);

/// Why the run cannot start: a source address that does not resolve, with what to do.
pub(super) async fn unresolvable_source(workflow: &Workflow, rerun: &str) -> Option<String> {
    for task in &workflow.tasks {
        let Action::StartSource(source) = &task.action else {
            continue;
        };
        if task.when == Some(false) || source.kind != SourceKind::Http {
            continue;
        }
        let Some(url) = &source.url else { continue };
        if let Err(why) = resolve(url).await {
            return Some(format!(
                "task `{}`: the source's address {url} cannot be reached: {why}. This machine \
                 looks offline (or the name is wrong); nothing was started, and nothing is \
                 replaced by recorded data.\n{}",
                task.name,
                advice(workflow.offline.as_ref(), rerun)
            ));
        }
    }
    None
}

/// What to run instead: the workflow's offline alternative as a command line, when it has one.
fn advice(offline: Option<&OfflineAlternative>, rerun: &str) -> String {
    match offline {
        Some(alternative) => {
            let sets: Vec<String> = (alternative.set.iter())
                .map(|(name, value)| {
                    let value = weir_contracts::template::value_text(value);
                    format!("--set {name}={}", crate::shell::word(&value))
                })
                .collect();
            format!(
                "To run on {} instead:\n    {rerun} {}",
                alternative.description,
                sets.join(" ")
            )
        }
        None => {
            "Run it where the address resolves, or point the source at one that does.".to_string()
        }
    }
}

/// Why a source's address does not resolve.
#[derive(Debug, PartialEq, thiserror::Error)]
enum Unresolved {
    #[error("not a URL ({reason})")]
    NotAUrl { reason: String },
    #[error("the URL names no host")]
    NoHost,
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
    #[error("`{host}` does not resolve ({reason})")]
    Lookup { host: String, reason: String },
    #[error("`{host}` did not resolve within {}s", RESOLVE_WITHIN.as_secs())]
    TimedOut { host: String },
}

/// Resolves the URL's host, within [`RESOLVE_WITHIN`].
async fn resolve(url: &str) -> Result<(), Unresolved> {
    let parsed = reqwest::Url::parse(url).map_err(|error| Unresolved::NotAUrl {
        reason: error.to_string(),
    })?;
    let host = parsed.host_str().ok_or(Unresolved::NoHost)?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let lookup = tokio::net::lookup_host((host.clone(), port));
    match tokio::time::timeout(RESOLVE_WITHIN, lookup).await {
        Ok(Ok(mut addresses)) => match addresses.next() {
            Some(_) => Ok(()),
            None => Err(Unresolved::NoAddress { host }),
        },
        Ok(Err(error)) => Err(Unresolved::Lookup {
            host,
            reason: error.to_string(),
        }),
        Err(_) => Err(Unresolved::TimedOut { host }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reserved_invalid_name_never_resolves_and_loopback_always_does() {
        // RFC 6761: `.invalid` names never resolve, online or not.
        let refused = resolve("https://prices.example.invalid/spot").await;
        assert!(matches!(
            refused,
            Err(Unresolved::Lookup { ref host, .. } | Unresolved::NoAddress { ref host })
                if host == "prices.example.invalid"
        ));
        assert_eq!(resolve("http://127.0.0.1:9/x").await, Ok(()));
        assert!(matches!(
            resolve("not a url").await,
            Err(Unresolved::NotAUrl { .. })
        ));
        assert_eq!(resolve("unix:/run/x").await, Err(Unresolved::NoHost));
    }

    #[test]
    fn the_advice_is_the_command_line_with_the_alternative_values() {
        let alternative = OfflineAlternative {
            description: "recorded BTC/USD closes".into(),
            set: [
                ("source_kind".to_string(), serde_json::json!("replay")),
                ("rate_unit".to_string(), serde_json::json!("USD")),
            ]
            .into(),
        };
        assert_eq!(
            advice(Some(&alternative), "weir run w.yaml"),
            "To run on recorded BTC/USD closes instead:\n    weir run w.yaml --set \
             rate_unit=USD --set source_kind=replay"
        );
    }
}
