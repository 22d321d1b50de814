//! The chart server's command line (`weir charts serve`) as a typed value, parsed by the
//! `weir` binary and rendered by the catalog from the same type.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::args::CommandLine;
use clap::Args;

use crate::window::TopicWindow;

/// Serve live charts: a page, a JSON API, PNG/SVG snapshots and Visdom's HTTP protocol.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ChartServerArgs {
    #[arg(
        long = "addr",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8097"
    )]
    pub addr: SocketAddr,
    /// Kafka bootstrap servers, for windows fed from topics.
    #[arg(long, env = "WEIR_BROKERS")]
    pub brokers: Option<String>,
    /// A window fed from a topic, as JSON (`{"topic": "rates", "y": "rate", "kind": "line"}`)
    /// or briefly `topic=T,y=FIELD[,x=FIELD][,title=…][,kind=line|markers|bar]`.
    #[arg(long = "window", value_name = "WINDOW")]
    pub windows: Vec<TopicWindow>,
    /// Points kept per series, and entries per text window (older ones are dropped).
    #[arg(long, default_value_t = 10_000)]
    pub retention: usize,
    /// Where Visdom clients' `save` writes environments (one `<env>.json` each, as Visdom's
    /// `-env_path`), loaded again at start; without it, `save` is refused.
    #[arg(long, value_name = "DIR")]
    pub env_path: Option<PathBuf>,
}

impl CommandLine for ChartServerArgs {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--addr".into(), self.addr.to_string()];
        if let Some(brokers) = &self.brokers {
            args.extend(["--brokers".into(), brokers.clone()]);
        }
        for window in &self.windows {
            args.extend(["--window".into(), window.to_arg()]);
        }
        args.extend(["--retention".into(), self.retention.to_string()]);
        if let Some(dir) = &self.env_path {
            args.extend(["--env-path".into(), dir.display().to_string()]);
        }
        args
    }
}
