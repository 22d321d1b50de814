//! A fixed-capacity series of points: O(1) append, oldest points dropped first, and
//! min/max decimation for display.

use std::collections::VecDeque;

/// One series' retained points.
#[derive(Debug, Clone)]
pub struct Ring {
    points: VecDeque<(f64, f64)>,
    capacity: usize,
    /// Points ever appended, retained or not.
    appended: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            // Allocated once: appends never reallocate, so memory stays flat.
            points: VecDeque::with_capacity(capacity),
            capacity,
            appended: 0,
        }
    }

    pub fn push(&mut self, x: f64, y: f64) {
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back((x, y));
        self.appended += 1;
    }

    pub fn clear(&mut self) {
        self.points.clear();
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn appended(&self) -> u64 {
        self.appended
    }

    pub fn iter(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.points.iter()
    }

    /// At most `max_points` points keeping each bucket's first, minimum, maximum and last
    /// points in x order, so that spikes survive decimation. All points when they fit.
    pub fn decimated(&self, max_points: usize) -> Vec<(f64, f64)> {
        let n = self.points.len();
        if max_points == 0 || n <= max_points {
            return self.points.iter().copied().collect();
        }
        // Each bucket contributes up to four points.
        let buckets = (max_points / 4).max(1);
        let per_bucket = n.div_ceil(buckets);
        let mut out = Vec::with_capacity(buckets * 4);
        let mut start = 0;
        while start < n {
            let end = (start + per_bucket).min(n);
            let mut chosen = [start, start, start, end - 1];
            for i in start..end {
                let y = self.points[i].1;
                if y < self.points[chosen[1]].1 {
                    chosen[1] = i;
                }
                if y > self.points[chosen[2]].1 {
                    chosen[2] = i;
                }
            }
            chosen.sort_unstable();
            let mut last = usize::MAX;
            for i in chosen {
                if i != last {
                    out.push(self.points[i]);
                    last = i;
                }
            }
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_points_up_to_capacity() {
        let mut ring = Ring::new(3);
        for i in 0..5 {
            ring.push(i as f64, i as f64 * 10.0);
        }
        let points: Vec<_> = ring.iter().copied().collect();
        assert_eq!(points, vec![(2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]);
        assert_eq!(ring.appended(), 5);
    }

    #[test]
    fn decimation_keeps_extremes_and_bounds() {
        let mut ring = Ring::new(10_000);
        for i in 0..10_000 {
            let y = if i == 5_000 {
                1e6
            } else if i == 7_000 {
                -1e6
            } else {
                (i % 7) as f64
            };
            ring.push(i as f64, y);
        }
        let small = ring.decimated(400);
        assert!(small.len() <= 400, "{}", small.len());
        assert!(small.contains(&(5_000.0, 1e6)));
        assert!(small.contains(&(7_000.0, -1e6)));
        assert_eq!(small.first(), Some(&(0.0, 0.0)));
        assert_eq!(small.last(), Some(&(9_999.0, (9_999 % 7) as f64)));
        assert!(small.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert_eq!(ring.decimated(20_000).len(), 10_000);
    }
}
