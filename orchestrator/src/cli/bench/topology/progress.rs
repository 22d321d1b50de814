//! How a round's progress is sampled, and the steady rate read from it.
//!
//! Both contenders are watched the same way: their "records consumed" and "records done"
//! counters are read every [`SAMPLE_EVERY`], and the steady rate is taken between the
//! samples where the done count first reaches 10 % and 90 % of the records. Start-up, group
//! join and the last stragglers therefore stay out of the throughput figure.

use std::time::{Duration, Instant};

use anyhow::bail;

/// How often the counters are read.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Done fractions that bound the steady window.
const WINDOW: (f64, f64) = (0.1, 0.9);

/// One reading of a contender's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Instant,
    /// Records read from the input.
    pub consumed: u64,
    /// Records whose outputs are all acknowledged.
    pub done: u64,
}

/// A round watched to its end.
#[derive(Debug, Clone)]
pub struct Round {
    pub started: Instant,
    pub samples: Vec<Sample>,
}

impl Round {
    /// Records per second between the 10 % and 90 % samples.
    pub fn steady_rate(&self, total: u64) -> anyhow::Result<f64> {
        let reaching = |fraction: f64| {
            let goal = (total as f64 * fraction).ceil() as u64;
            self.samples.iter().find(|s| s.done >= goal)
        };
        let (Some(low), Some(high)) = (reaching(WINDOW.0), reaching(WINDOW.1)) else {
            bail!("the round never reached 90 % of {total} records");
        };
        let seconds = (high.at - low.at).as_secs_f64();
        if high.done <= low.done || seconds <= 0.0 {
            bail!(
                "the steady window holds no progress: {total} records are too few to measure at \
                 this speed; raise --records"
            );
        }
        Ok((high.done - low.done) as f64 / seconds)
    }

    /// Seconds from the start of the round to the first record read: process start,
    /// metadata and consumer-group join.
    pub fn startup_seconds(&self) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.consumed > 0)
            .map(|s| (s.at - self.started).as_secs_f64())
    }
}

/// Reads `counters` every [`SAMPLE_EVERY`] until `total` records are done. `counters` answers
/// `(consumed, done)`, `None` while they cannot be read yet, or an error that ends the round.
pub fn watch(
    started: Instant,
    total: u64,
    timeout: Duration,
    mut counters: impl FnMut() -> anyhow::Result<Option<(u64, u64)>>,
) -> anyhow::Result<Round> {
    let mut samples = Vec::new();
    let deadline = started + timeout;
    loop {
        if let Some((consumed, done)) = counters()? {
            samples.push(Sample {
                at: Instant::now(),
                consumed,
                done,
            });
            if done >= total {
                return Ok(Round { started, samples });
            }
        }
        if Instant::now() > deadline {
            let done = samples.last().map_or(0, |s| s.done);
            bail!("only {done} of {total} records were done within {timeout:?}");
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// The median, minimum and maximum of a few rounds' figures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no figures.
    pub fn of(figures: &[f64]) -> Option<Self> {
        let mut sorted = figures.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// How far apart the extremes are, relative to the median.
    pub fn relative_range(&self) -> f64 {
        (self.max - self.min) / self.median
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(points: &[(u64, u64, u64)]) -> Round {
        let started = Instant::now();
        Round {
            started,
            samples: points
                .iter()
                .map(|&(ms, consumed, done)| Sample {
                    at: started + Duration::from_millis(ms),
                    consumed,
                    done,
                })
                .collect(),
        }
    }

    #[test]
    fn the_steady_rate_leaves_out_start_up_and_stragglers() {
        // Two seconds of start-up, then 100 records/ms, then a slow tail.
        let r = round(&[
            (1000, 0, 0),
            (2000, 10, 0),
            (2100, 1000, 1000),
            (2900, 9000, 9000),
            (9000, 10_000, 10_000),
        ]);
        assert_eq!(r.steady_rate(10_000).unwrap(), 10_000.0);
        assert_eq!(r.startup_seconds(), Some(2.0));
    }

    #[test]
    fn a_round_that_did_not_get_far_has_no_rate() {
        let r = round(&[(1000, 5, 5), (2000, 50, 50)]);
        assert!(r.steady_rate(100).is_err());
        let instant = round(&[(1000, 100, 100)]);
        assert!(instant.steady_rate(100).is_err());
    }

    #[test]
    fn watching_ends_when_everything_is_done_and_fails_past_its_deadline() {
        let mut done = 0;
        let r = watch(Instant::now(), 30, Duration::from_secs(5), || {
            done += 10;
            Ok(Some((done, done)))
        })
        .unwrap();
        assert_eq!(r.samples.len(), 3);
        let stuck = watch(Instant::now(), 30, Duration::from_millis(50), || {
            Ok(Some((1, 1)))
        });
        assert!(stuck.unwrap_err().to_string().contains("only 1 of 30"));
    }

    #[test]
    fn spreads_have_a_median() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 3.0]).unwrap().median, 2.0);
        assert!(Spread::of(&[]).is_none());
        assert_eq!(s.relative_range(), 1.0);
    }
}
