//! Throughput and end-to-end latency of a running topology, as Prometheus text on `/metrics`
//! and as a periodic log line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use warp::{Filter, Reply};
use weir_contracts::status::{LatencyStatus, RunnerStatus};

use crate::status::Route;

/// Counters shared between the runner and the metrics endpoint.
#[derive(Debug)]
pub struct Metrics {
    topology: String,
    started: Instant,
    /// Records read from the input topic.
    pub records_in: AtomicU64,
    /// Records whose outputs are all acknowledged (and whose offsets may be committed).
    pub records_done: AtomicU64,
    /// Messages written to output topics, error topic excluded.
    pub messages_out: AtomicU64,
    /// Records sent to the error topic.
    pub records_failed: AtomicU64,
    /// Records a window took aside as late (to its late topic or the error topic).
    pub records_late: AtomicU64,
    /// Microseconds from the input message's timestamp to the acknowledgement of its outputs.
    latency_us: Mutex<Histogram<u64>>,
}

/// A consistent read of the counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub records_in: u64,
    pub records_done: u64,
    pub messages_out: u64,
    pub records_failed: u64,
    pub records_late: u64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_samples: u64,
    pub uptime_s: f64,
}

impl Metrics {
    pub fn new(topology: &str) -> Self {
        Self {
            topology: topology.to_string(),
            started: Instant::now(),
            records_in: AtomicU64::new(0),
            records_done: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            records_failed: AtomicU64::new(0),
            records_late: AtomicU64::new(0),
            // Three significant digits up to one hour.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
        }
    }

    pub fn record_latency_ms(&self, millis: i64) {
        let micros = u64::try_from(millis.max(0))
            .unwrap_or(0)
            .saturating_mul(1000);
        let mut histogram = self.latency_us.lock().expect("latency lock");
        histogram.saturating_record(micros.max(1));
    }

    pub fn snapshot(&self) -> Snapshot {
        let histogram = self.latency_us.lock().expect("latency lock");
        let quantile_ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        Snapshot {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_done: self.records_done.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            records_failed: self.records_failed.load(Ordering::Relaxed),
            records_late: self.records_late.load(Ordering::Relaxed),
            latency_p50_ms: quantile_ms(0.5),
            latency_p99_ms: quantile_ms(0.99),
            latency_samples: histogram.len(),
            uptime_s: self.started.elapsed().as_secs_f64(),
        }
    }

    /// The Prometheus text exposition of the counters.
    pub fn prometheus(&self) -> String {
        let s = self.snapshot();
        let t = &self.topology;
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{topology=\"{t}\"}} {value}\n"
            ));
        };
        counter(
            "weir_records_in_total",
            "Records read from the input topic.",
            s.records_in,
        );
        counter(
            "weir_records_done_total",
            "Records whose outputs were all acknowledged.",
            s.records_done,
        );
        counter(
            "weir_messages_out_total",
            "Messages written to output topics (error topic excluded).",
            s.messages_out,
        );
        counter(
            "weir_records_failed_total",
            "Records sent to the error topic.",
            s.records_failed,
        );
        counter(
            "weir_records_late_total",
            "Records later than a window's grace, written to its late topic or the error topic.",
            s.records_late,
        );
        out.push_str(&format!(
            "# HELP weir_latency_seconds End-to-end latency, input timestamp to output ack.\n\
             # TYPE weir_latency_seconds summary\n\
             weir_latency_seconds{{topology=\"{t}\",quantile=\"0.5\"}} {}\n\
             weir_latency_seconds{{topology=\"{t}\",quantile=\"0.99\"}} {}\n\
             weir_latency_seconds_count{{topology=\"{t}\"}} {}\n",
            s.latency_p50_ms / 1000.0,
            s.latency_p99_ms / 1000.0,
            s.latency_samples
        ));
        out
    }
}

impl Snapshot {
    /// Writes these counts into a runner's status.
    pub fn write_counts(&self, status: &mut RunnerStatus) {
        status.consumed = self.records_in;
        status.processed = self.records_done;
        status.failed_records = self.records_failed;
        status.late_records = self.records_late;
        status.messages_out = self.messages_out;
        status.latency = (self.latency_samples > 0).then_some(LatencyStatus {
            p50_ms: self.latency_p50_ms,
            p99_ms: self.latency_p99_ms,
            samples: self.latency_samples,
        });
    }

    /// One human-readable line for the periodic log.
    pub fn log_line(&self, previous: &Snapshot) -> String {
        let seconds = (self.uptime_s - previous.uptime_s).max(1e-9);
        let rate = (self.records_done - previous.records_done) as f64 / seconds;
        format!(
            "{} records in, {} done ({rate:.0}/s), {} messages out, {} errors, latency p50 {:.1} ms p99 {:.1} ms",
            self.records_in,
            self.records_done,
            self.messages_out,
            self.records_failed,
            self.latency_p50_ms,
            self.latency_p99_ms
        )
    }
}

/// `GET /metrics`: the Prometheus text of `metrics`.
pub fn route(metrics: Arc<Metrics>) -> Route {
    warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            warp::reply::with_header(
                metrics.prometheus(),
                "content-type",
                "text/plain; version=0.0.4",
            )
            .into_response()
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_counters_and_quantiles() {
        let m = Metrics::new("demo");
        m.records_in.fetch_add(3, Ordering::Relaxed);
        for ms in [10, 20, 30, 40, 1000] {
            m.record_latency_ms(ms);
        }
        let text = m.prometheus();
        assert!(
            text.contains("weir_records_in_total{topology=\"demo\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("quantile=\"0.5\"} 0.03"), "{text}");
        assert!(
            text.contains("weir_latency_seconds_count{topology=\"demo\"} 5\n"),
            "{text}"
        );
        let s = m.snapshot();
        assert!((s.latency_p99_ms - 1000.0).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn the_status_has_a_latency_only_once_a_record_was_measured() {
        let m = Metrics::new("demo");
        let mut status = RunnerStatus::new("demo");
        m.snapshot().write_counts(&mut status);
        assert_eq!(status.latency, None);
        for ms in [10, 20, 30] {
            m.record_latency_ms(ms);
        }
        m.snapshot().write_counts(&mut status);
        let latency = status.latency.expect("three records measured");
        assert_eq!(latency.samples, 3);
        assert!((latency.p50_ms - 20.0).abs() < 0.1, "{latency:?}");
        assert!((latency.p99_ms - 30.0).abs() < 0.1, "{latency:?}");
    }
}
