//! Customers' purchase histories as the customer-base models read them, with the
//! conventions of BTYD and lifetimes: purchases on the same day are one purchase (amounts
//! summed); x is the number of repeat purchase days up to the end of calibration, t_x the
//! time from the first purchase to the last of them, T the time from the first purchase to
//! the end of calibration, all in one time unit.

use rayon::prelude::*;

/// A purchase day of one customer: (customer index, day number, amount of that day).
pub type Purchase = (u32, i32, f64);

/// Purchases sorted by customer and day, one per customer and day (amounts summed): the
/// per-customer aggregate a fit starts from. It is built per part of the rows and parts
/// merge exactly, in any order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurchaseDays(pub Vec<Purchase>);

impl PurchaseDays {
    /// The purchase days of some rows, in any order.
    pub fn from_rows(mut rows: Vec<Purchase>) -> Self {
        rows.sort_unstable_by_key(|&(c, d, _)| (c, d));
        let mut days: Vec<Purchase> = Vec::with_capacity(rows.len());
        for row in rows {
            match days.last_mut() {
                Some(last) if (last.0, last.1) == (row.0, row.1) => last.2 += row.2,
                _ => days.push(row),
            }
        }
        PurchaseDays(days)
    }

    /// Both parts' purchase days, those of the same customer and day summed.
    pub fn merge(self, other: Self) -> Self {
        let (a, b) = (self.0, other.0);
        let mut out: Vec<Purchase> = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let next = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if (x.0, x.1) <= (y.0, y.1) => {
                    i += 1;
                    *x
                }
                (_, Some(y)) => {
                    j += 1;
                    *y
                }
                (Some(x), None) => {
                    i += 1;
                    *x
                }
                (None, None) => break,
            };
            match out.last_mut() {
                Some(last) if (last.0, last.1) == (next.0, next.1) => last.2 += next.2,
                _ => out.push(next),
            }
        }
        PurchaseDays(out)
    }

    /// Each customer's days, in customer order: (customer, its days).
    pub fn by_customer(&self) -> impl Iterator<Item = (u32, &[Purchase])> {
        self.0
            .chunk_by(|a, b| a.0 == b.0)
            .map(|days| (days[0].0, days))
    }
}

/// The length of a time unit in days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeUnit(pub f64);

/// One customer's summary at the end of calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Repeat purchase days in calibration.
    pub x: u32,
    /// From the first purchase to the last in calibration, in time units.
    pub t_x: f64,
    /// From the first purchase to the end of calibration, in time units.
    pub t: f64,
    /// Mean amount of the repeat purchase days (NaN without any): what the spend model reads.
    pub spend: f64,
    /// Purchase days after calibration, up to the end of the holdout.
    pub holdout: u32,
}

/// The summary of one customer's days (sorted, distinct) with calibration ending on day
/// `end` (inclusive) and the holdout on day `holdout_end`; `None` when the first purchase is
/// after `end`.
pub fn summarise(days: &[Purchase], end: i32, holdout_end: i32, unit: TimeUnit) -> Option<Summary> {
    let first = days.first()?.1;
    if first > end {
        return None;
    }
    let calibration = days.partition_point(|d| d.1 <= end);
    let repeats = &days[1..calibration];
    let last = days[calibration - 1].1;
    let holdout = days[calibration..]
        .iter()
        .take_while(|d| d.1 <= holdout_end)
        .count();
    let spend = if repeats.is_empty() {
        f64::NAN
    } else {
        repeats.iter().map(|d| d.2).sum::<f64>() / repeats.len() as f64
    };
    Some(Summary {
        x: repeats.len() as u32,
        t_x: f64::from(last - first) / unit.0,
        t: f64::from(end - first) / unit.0,
        spend,
        holdout: holdout as u32,
    })
}

/// Customers' (x, t_x, T) as columns, for the likelihoods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customers {
    pub x: Vec<u32>,
    pub t_x: Vec<f64>,
    pub t: Vec<f64>,
}

impl Customers {
    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    pub fn push(&mut self, x: u32, t_x: f64, t: f64) {
        self.x.push(x);
        self.t_x.push(t_x);
        self.t.push(t);
    }

    /// The largest x, for the tables of terms that depend on x alone.
    pub fn max_x(&self) -> u32 {
        self.x.par_iter().copied().max().unwrap_or(0)
    }
}

/// Customers per chunk of a parallel sum: chunks are fixed, and summed in order, so the
/// sums are the same on every run whatever the threads.
pub(crate) const CHUNK: usize = 8192;

/// Σ `per` over chunks of `n` customers, chunks in parallel and summed in order.
pub(crate) fn chunked_sum<const K: usize>(
    n: usize,
    per: impl Fn(std::ops::Range<usize>) -> [f64; K] + Sync,
) -> [f64; K] {
    let parts: Vec<[f64; K]> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| per(c * CHUNK..((c + 1) * CHUNK).min(n)))
        .collect();
    parts.iter().fold([0.0; K], |mut acc, p| {
        for (a, v) in acc.iter_mut().zip(p) {
            *a += v;
        }
        acc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_day_purchases_are_one_and_parts_merge_exactly() {
        let rows = vec![
            (1, 10, 5.0),
            (0, 3, 1.0),
            (1, 10, 2.0),
            (0, 1, 4.0),
            (1, 30, 1.0),
        ];
        let whole = PurchaseDays::from_rows(rows.clone());
        assert_eq!(
            whole.0,
            vec![(0, 1, 4.0), (0, 3, 1.0), (1, 10, 7.0), (1, 30, 1.0)]
        );
        let (a, b) = rows.split_at(2);
        let merged = PurchaseDays::from_rows(b.to_vec()).merge(PurchaseDays::from_rows(a.to_vec()));
        assert_eq!(merged, whole);
    }

    #[test]
    fn summary_follows_the_conventions() {
        // First day 0, repeats on days 14 and 21 (two lines on 21), one after the end.
        let days = PurchaseDays::from_rows(vec![
            (0, 0, 10.0),
            (0, 14, 6.0),
            (0, 21, 2.0),
            (0, 21, 2.0),
            (0, 40, 9.0),
            (0, 90, 9.0),
        ]);
        let week = TimeUnit(7.0);
        let s = summarise(&days.0, 28, 60, week).unwrap();
        assert_eq!((s.x, s.t_x, s.t, s.spend, s.holdout), (2, 3.0, 4.0, 5.0, 1));
        // A customer whose first purchase is after the end is left out.
        assert!(summarise(&days.0[4..], 28, 60, week).is_none());
        // One purchase only: x = 0, t_x = 0, no spend.
        let s = summarise(&days.0[..1], 28, 60, week).unwrap();
        assert_eq!((s.x, s.t_x, s.t), (0, 0.0, 4.0));
        assert!(s.spend.is_nan());
    }
}
