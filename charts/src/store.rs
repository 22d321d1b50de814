//! Windows (Visdom's name for a plot) grouped in environments, each series a bounded ring,
//! and the stream of changes browsers follow.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;
use weir_contracts::window::WindowKind;

use crate::ring::Ring;

/// What browsers are told. Sequence numbers let a reconnecting client resume.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// Points appended to a series.
    Points {
        seq: u64,
        env: String,
        win: String,
        series: String,
        points: Vec<(f64, f64)>,
    },
    /// An entry appended to a text window.
    Text {
        seq: u64,
        env: String,
        win: String,
        text: String,
    },
    /// A window was created, replaced or closed: fetch it (or drop it) again.
    Window {
        seq: u64,
        env: String,
        win: String,
        closed: bool,
    },
}

impl Event {
    pub fn seq(&self) -> u64 {
        match self {
            Event::Points { seq, .. } | Event::Text { seq, .. } | Event::Window { seq, .. } => *seq,
        }
    }
}

/// One window: a plot's series, a text log's entries or a properties list, by `kind`.
#[derive(Debug, Clone)]
pub struct Window {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub kind: WindowKind,
    /// x labels of a bar chart whose bars are named (x is then 1, 2, …).
    pub categories: Vec<String>,
    pub series: Vec<(String, Ring)>,
    /// Entries of a text window, oldest dropped past the retention.
    pub text: VecDeque<String>,
    /// Entries ever appended to a text window.
    pub text_appended: u64,
    /// The items of a properties window, as sent.
    pub properties: serde_json::Value,
}

impl Window {
    fn new(options: WindowOptions) -> Self {
        Window {
            title: options.title,
            x_label: options.x_label,
            y_label: options.y_label,
            kind: options.kind,
            categories: options.categories,
            series: Vec::new(),
            text: VecDeque::new(),
            text_appended: 0,
            properties: serde_json::Value::Null,
        }
    }
}

/// A window as returned by the API, decimated for display.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WindowView {
    pub env: String,
    pub win: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub kind: WindowKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// The series of a plot (empty for text and properties).
    pub series: Vec<SeriesView>,
    /// The retained entries of a text window, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextView>,
    /// The items of a properties window.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub properties: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TextView {
    /// Entries ever appended (the retained ones are fewer once the log is full).
    pub appended: u64,
    pub entries: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeriesView {
    pub name: String,
    /// Points ever appended (the retained ones are fewer once the ring is full).
    pub appended: u64,
    /// Points kept: the latest ones, at most `retention`.
    pub retained: u64,
    /// The most points the series keeps.
    pub retention: u64,
    /// The retained points, decimated to what the reader asked for (spikes kept).
    pub points: Vec<(f64, f64)>,
}

impl SeriesView {
    /// The series' name and how many points it received; when it kept only the latest of
    /// them, it says so ("rate (latest 10,000 of 1,120,000)").
    pub fn legend(&self) -> String {
        match self.retained < self.appended {
            true => format!(
                "{} (latest {} of {})",
                self.name,
                grouped(self.retained),
                grouped(self.appended)
            ),
            false => format!("{} ({})", self.name, grouped(self.appended)),
        }
    }
}

/// `n` with a comma between thousands.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Options of a new window.
#[derive(Debug, Clone, Default)]
pub struct WindowOptions {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub kind: WindowKind,
    /// Names of a bar chart's bars, when they are named.
    pub categories: Vec<String>,
}

/// All chart state. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Charts {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Arc<Event>>,
    retention: usize,
}

#[derive(Debug)]
struct Inner {
    envs: BTreeMap<String, BTreeMap<String, Window>>,
    seq: u64,
    /// The most recent events, for clients resuming after a reconnect.
    recent: VecDeque<Arc<Event>>,
}

/// How many events are kept for resuming clients.
const RECENT_EVENTS: usize = 8192;

impl Charts {
    /// `retention` points are kept per series.
    pub fn new(retention: usize) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                envs: BTreeMap::new(),
                seq: 0,
                recent: VecDeque::with_capacity(RECENT_EVENTS),
            })),
            events,
            retention,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("charts lock")
    }

    fn publish(&self, inner: &mut Inner, make: impl FnOnce(u64) -> Event) {
        inner.seq += 1;
        let event = Arc::new(make(inner.seq));
        if inner.recent.len() == RECENT_EVENTS {
            inner.recent.pop_front();
        }
        inner.recent.push_back(event.clone());
        // No subscriber is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Events after `seq`, if they are all still kept; `None` means the client must refetch.
    pub fn events_since(&self, seq: u64) -> Option<Vec<Arc<Event>>> {
        let inner = self.lock();
        let oldest = inner
            .recent
            .front()
            .map(|e| e.seq())
            .unwrap_or(inner.seq + 1);
        if seq + 1 < oldest && seq < inner.seq {
            return None;
        }
        Some(
            inner
                .recent
                .iter()
                .filter(|e| e.seq() > seq)
                .cloned()
                .collect(),
        )
    }

    pub fn last_seq(&self) -> u64 {
        self.lock().seq
    }

    /// Creates or replaces a window with the given series.
    pub fn create(
        &self,
        env: &str,
        win: &str,
        options: WindowOptions,
        series: Vec<(String, Vec<(f64, f64)>)>,
    ) {
        let mut window = Window::new(options);
        window.series = series
            .into_iter()
            .map(|(name, points)| {
                let mut ring = Ring::new(self.retention);
                for (x, y) in points {
                    ring.push(x, y);
                }
                (name, ring)
            })
            .collect();
        self.put(env, win, window);
    }

    /// Creates or replaces a text window holding `entries` (the last `retention` of them).
    pub fn create_text(&self, env: &str, win: &str, options: WindowOptions, entries: Vec<String>) {
        let mut window = Window::new(WindowOptions {
            kind: WindowKind::Text,
            ..options
        });
        window.text_appended = entries.len() as u64;
        let skip = entries.len().saturating_sub(self.retention);
        window.text = entries.into_iter().skip(skip).collect();
        self.put(env, win, window);
    }

    /// Creates or replaces a properties window.
    pub fn create_properties(
        &self,
        env: &str,
        win: &str,
        options: WindowOptions,
        items: serde_json::Value,
    ) {
        let mut window = Window::new(WindowOptions {
            kind: WindowKind::Properties,
            ..options
        });
        window.properties = items;
        self.put(env, win, window);
    }

    fn put(&self, env: &str, win: &str, window: Window) {
        let mut inner = self.lock();
        inner
            .envs
            .entry(env.to_string())
            .or_default()
            .insert(win.to_string(), window);
        self.publish(&mut inner, |seq| Event::Window {
            seq,
            env: env.into(),
            win: win.into(),
            closed: false,
        });
    }

    /// Appends an entry to a text window; false when there is no such text window.
    pub fn append_text(&self, env: &str, win: &str, entry: &str) -> bool {
        let mut inner = self.lock();
        let Some(window) = inner.envs.get_mut(env).and_then(|e| e.get_mut(win)) else {
            return false;
        };
        if window.kind != WindowKind::Text {
            return false;
        }
        if window.text.len() >= self.retention {
            window.text.pop_front();
        }
        window.text.push_back(entry.to_string());
        window.text_appended += 1;
        self.publish(&mut inner, |seq| Event::Text {
            seq,
            env: env.into(),
            win: win.into(),
            text: entry.into(),
        });
        true
    }

    /// The kind of a window, if it exists.
    pub fn kind(&self, env: &str, win: &str) -> Option<WindowKind> {
        self.lock().envs.get(env)?.get(win).map(|w| w.kind)
    }

    /// Appends points to a series (created on first use); with `replace`, the series is
    /// emptied first. Creates the window if it does not exist; false (nothing appended) when
    /// the window is not a plot.
    #[must_use]
    pub fn append(
        &self,
        env: &str,
        win: &str,
        series: &str,
        points: &[(f64, f64)],
        replace: bool,
    ) -> bool {
        let mut inner = self.lock();
        let created = !inner.envs.get(env).is_some_and(|e| e.contains_key(win));
        let window = inner
            .envs
            .entry(env.to_string())
            .or_default()
            .entry(win.to_string())
            .or_insert_with(|| {
                Window::new(WindowOptions {
                    title: win.to_string(),
                    ..WindowOptions::default()
                })
            });
        if !window.kind.is_plot() {
            return false;
        }
        let index = match window.series.iter().position(|(name, _)| name == series) {
            Some(index) => index,
            None => {
                window
                    .series
                    .push((series.to_string(), Ring::new(self.retention)));
                window.series.len() - 1
            }
        };
        let ring = &mut window.series[index].1;
        if replace {
            ring.clear();
        }
        for &(x, y) in points {
            ring.push(x, y);
        }
        if created || replace {
            self.publish(&mut inner, |seq| Event::Window {
                seq,
                env: env.into(),
                win: win.into(),
                closed: false,
            });
        } else {
            self.publish(&mut inner, |seq| Event::Points {
                seq,
                env: env.into(),
                win: win.into(),
                series: series.into(),
                points: points.to_vec(),
            });
        }
        true
    }

    /// Removes one series of a window; true when it existed.
    pub fn remove_series(&self, env: &str, win: &str, series: &str) -> bool {
        let mut inner = self.lock();
        let Some(window) = inner.envs.get_mut(env).and_then(|e| e.get_mut(win)) else {
            return false;
        };
        let before = window.series.len();
        window.series.retain(|(name, _)| name != series);
        let removed = window.series.len() != before;
        if removed {
            self.publish(&mut inner, |seq| Event::Window {
                seq,
                env: env.into(),
                win: win.into(),
                closed: false,
            });
        }
        removed
    }

    pub fn exists(&self, env: &str, win: &str) -> bool {
        self.lock()
            .envs
            .get(env)
            .is_some_and(|e| e.contains_key(win))
    }

    /// Closes one window, or every window of the environment when `win` is `None`.
    pub fn close(&self, env: &str, win: Option<&str>) {
        let mut inner = self.lock();
        let closed: Vec<String> = match (inner.envs.get_mut(env), win) {
            (Some(windows), Some(win)) => windows
                .remove(win)
                .map(|_| vec![win.to_string()])
                .unwrap_or_default(),
            (Some(windows), None) => std::mem::take(windows).into_keys().collect(),
            (None, _) => Vec::new(),
        };
        for win in closed {
            self.publish(&mut inner, |seq| Event::Window {
                seq,
                env: env.into(),
                win,
                closed: true,
            });
        }
    }

    pub fn delete_env(&self, env: &str) {
        self.close(env, None);
        self.lock().envs.remove(env);
    }

    /// Makes sure an environment exists (Visdom clients announce theirs on connect).
    pub fn ensure_env(&self, env: &str) {
        self.lock().envs.entry(env.to_string()).or_default();
    }

    pub fn envs(&self) -> Vec<String> {
        self.lock().envs.keys().cloned().collect()
    }

    /// Every window (env, win, title).
    pub fn windows(&self) -> Vec<(String, String, String)> {
        let inner = self.lock();
        inner
            .envs
            .iter()
            .flat_map(|(env, windows)| {
                windows
                    .iter()
                    .map(move |(win, w)| (env.clone(), win.clone(), w.title.clone()))
            })
            .collect()
    }

    /// A window with each series decimated to at most `max_points` (0: all retained points).
    pub fn view(&self, env: &str, win: &str, max_points: usize) -> Option<WindowView> {
        let inner = self.lock();
        let window = inner.envs.get(env)?.get(win)?;
        Some(WindowView {
            env: env.into(),
            win: win.into(),
            title: window.title.clone(),
            x_label: window.x_label.clone(),
            y_label: window.y_label.clone(),
            kind: window.kind,
            categories: window.categories.clone(),
            series: window
                .series
                .iter()
                .map(|(name, ring)| SeriesView {
                    name: name.clone(),
                    appended: ring.appended(),
                    retained: ring.len() as u64,
                    retention: self.retention as u64,
                    points: ring.decimated(max_points),
                })
                .collect(),
            text: (window.kind == WindowKind::Text).then(|| TextView {
                appended: window.text_appended,
                entries: window.text.iter().cloned().collect(),
            }),
            properties: window.properties.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legend_says_when_only_the_latest_points_are_kept() {
        let mut series = SeriesView {
            name: "1".into(),
            appended: 1_120_000,
            retained: 10_000,
            retention: 10_000,
            points: Vec::new(),
        };
        assert_eq!(series.legend(), "1 (latest 10,000 of 1,120,000)");
        (series.appended, series.retained) = (999, 999);
        assert_eq!(series.legend(), "1 (999)");
    }

    #[test]
    fn append_creates_and_extends_series_and_numbers_events() {
        let charts = Charts::new(100);
        let mut events = charts.subscribe();
        assert!(charts.append("main", "rates", "rate", &[(1.0, 10.0)], false));
        assert!(charts.append("main", "rates", "rate", &[(2.0, 11.0), (3.0, 12.0)], false));
        let view = charts.view("main", "rates", 0).unwrap();
        assert_eq!(
            view.series[0].points,
            vec![(1.0, 10.0), (2.0, 11.0), (3.0, 12.0)]
        );
        assert!(matches!(
            &*events.try_recv().unwrap(),
            Event::Window { seq: 1, .. }
        ));
        match &*events.try_recv().unwrap() {
            Event::Points { seq, points, .. } => {
                assert_eq!(*seq, 2);
                assert_eq!(points.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(charts.events_since(1).unwrap().len(), 1);
    }

    #[test]
    fn close_and_delete() {
        let charts = Charts::new(10);
        assert!(charts.append("a", "w1", "s", &[(0.0, 0.0)], false));
        assert!(charts.append("a", "w2", "s", &[(0.0, 0.0)], false));
        charts.close("a", Some("w1"));
        assert!(!charts.exists("a", "w1"));
        assert!(charts.exists("a", "w2"));
        charts.delete_env("a");
        assert!(charts.envs().is_empty());
    }

    #[test]
    fn resuming_far_behind_asks_for_a_refetch() {
        let charts = Charts::new(10);
        for i in 0..(RECENT_EVENTS as u64 + 10) {
            assert!(charts.append("e", "w", "s", &[(i as f64, 0.0)], false));
        }
        assert!(charts.events_since(0).is_none());
        assert_eq!(charts.events_since(charts.last_seq() - 3).unwrap().len(), 3);
    }

    #[test]
    fn a_text_window_keeps_its_latest_entries_and_takes_no_points() {
        let charts = Charts::new(3);
        charts.create_text("main", "log", WindowOptions::default(), vec!["a".into()]);
        let mut events = charts.subscribe();
        for entry in ["b", "c", "d"] {
            assert!(charts.append_text("main", "log", entry));
        }
        let text = charts.view("main", "log", 0).unwrap().text.unwrap();
        assert_eq!(text.entries, ["b", "c", "d"]);
        assert_eq!(text.appended, 4);
        assert!(matches!(&*events.try_recv().unwrap(), Event::Text { text, .. } if text == "b"));
        assert!(!charts.append("main", "log", "s", &[(1.0, 1.0)], false));
        assert!(!charts.append_text("main", "missing", "x"));
    }
}
