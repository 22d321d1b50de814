//! The `weir` command line of each service the `weir` binary carries (runner, chart server,
//! sources). The local and Kubernetes realizations differ only in where things are: the
//! address to listen on, the Kafka endpoint, and where input files are.

use crate::service::Params;

/// Where a service finds what it needs, as seen from where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `host:port` to listen on, for services with a port.
    pub listen: String,
    /// Kafka bootstrap servers, when the service uses Kafka.
    pub kafka: Option<String>,
    /// The input file (topology or recording) as the service sees it.
    pub file: Option<String>,
}

/// Arguments after `weir`, or `None` for a service `weir` does not carry.
pub fn weir_args(service: &str, params: &Params, placement: &Placement) -> Option<Vec<String>> {
    let kafka = || placement.kafka.clone().unwrap_or_default();
    let file = || placement.file.clone().unwrap_or_default();
    let interval = || {
        format!(
            "{}ms",
            params.duration("interval").unwrap_or_default().as_millis()
        )
    };
    let owned = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<String>>();
    let mut args = match service {
        "topology-runner" => {
            let mut args = owned(&["topology", "run"]);
            args.extend([
                file(),
                "--brokers".into(),
                kafka(),
                "--addr".into(),
                placement.listen.clone(),
            ]);
            for pair in params
                .str("set")
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
            {
                if !pair.is_empty() {
                    args.extend(["--set".into(), pair.into()]);
                }
            }
            args
        }
        "chart-server" => {
            let mut args = owned(&["charts", "serve", "--addr"]);
            args.extend([
                placement.listen.clone(),
                "--retention".into(),
                params.int("retention").unwrap_or(10_000).to_string(),
            ]);
            if let Some(windows) = params.str("windows") {
                args.extend(["--brokers".into(), kafka()]);
                for window in windows.split('|').map(str::trim).filter(|w| !w.is_empty()) {
                    args.extend(["--window".into(), window.into()]);
                }
            }
            args
        }
        "http-source" => {
            let mut args = owned(&["source", "http", "--url"]);
            args.push(params.str("url").unwrap_or_default().into());
            args
        }
        "replay-source" => {
            let mut args = owned(&["source", "replay"]);
            args.push(file());
            args
        }
        _ => return None,
    };
    if service.ends_with("-source") {
        args.extend([
            "--topic".into(),
            params.str("topic").unwrap_or_default().into(),
            "--brokers".into(),
            kafka(),
            "--interval".into(),
            interval(),
        ]);
        if params.bool("repeat") == Some(true) {
            args.push("--repeat".into());
        }
    }
    Some(args)
}
