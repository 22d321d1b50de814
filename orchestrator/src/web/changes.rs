//! The change feed behind `GET /api/events`: one background task computes what the pages
//! show (dashboard, instances, runs, the tasks of runs still going) every half second while
//! at least one browser listens, and bumps a generation that every browser's event stream
//! watches. However many browsers are connected, the state is read once per tick, and not at
//! all when none is. Polling remains because not everything it watches writes the store: a
//! local instance's process can die without a word to anyone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use super::api::{self, Context};

/// How often the shared task looks for changes while someone listens.
const TICK: Duration = Duration::from_millis(500);

/// The generation of the pages' state, shared by every event stream.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    context: Context,
    generation: Arc<OnceLock<Arc<watch::Sender<u64>>>>,
}

impl ChangeFeed {
    pub fn new(context: Context) -> Self {
        ChangeFeed {
            context,
            generation: Arc::new(OnceLock::new()),
        }
    }

    /// A receiver of the generation, which sees the current one at once; the first subscriber
    /// starts the shared task (on the runtime serving the request).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation
            .get_or_init(|| {
                let sender = Arc::new(watch::channel(0).0);
                tokio::spawn(watch_for_changes(self.context.clone(), sender.clone()));
                sender
            })
            .subscribe()
    }
}

/// Bumps the generation whenever what the pages show changes; ends with the feed.
async fn watch_for_changes(context: Context, generation: Arc<watch::Sender<u64>>) {
    let mut last = String::new();
    while Arc::strong_count(&generation) > 1 {
        if generation.receiver_count() > 0 {
            let probe = context.clone();
            let now = tokio::task::spawn_blocking(move || fingerprint(&probe))
                .await
                .unwrap_or_default();
            if now != last {
                last = now;
                generation.send_modify(|g| *g += 1);
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Everything the pages show, as one text to compare.
fn fingerprint(context: &Context) -> String {
    let (_, dashboard) = api::dashboard(context);
    let (_, instances) = api::instances(context);
    let (_, runs) = api::runs(context);
    let tasks: Vec<serde_json::Value> = runs
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter(|r| {
                    !matches!(
                        r["state"].as_str(),
                        Some("succeeded" | "failed" | "cancelled")
                    )
                })
                .map(|r| api::run(context, r["id"].as_str().unwrap_or_default()).1)
                .collect()
        })
        .unwrap_or_default();
    format!("{dashboard}{instances}{runs}{tasks:?}")
}
