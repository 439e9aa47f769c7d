//! Area under the ROC curve, exact, over millions of scores.
//!
//! The scores become integers in the same order ([`key`]) and are spread over buckets of
//! consecutive keys in one pass: a positive outranks every negative of a lower bucket, so
//! only the keys within one bucket, a few thousand that sit in cache, are ever sorted,
//! bucket by bucket in parallel. Sorting all the keys instead reads and writes every key
//! once per digit, out of cache.

use rayon::prelude::*;

/// A class's keys are spread over at most 2^BUCKET_BITS buckets.
const BUCKET_BITS: u32 = 16;
/// A bucket's keys of one class beyond which they are radix sorted, not compared.
const RADIX_FROM: usize = 1 << 12;

/// Area under the ROC curve of (score, label) pairs, label 1 positive and any other
/// negative, as scikit-learn's `roc_auc_score`: the share of (positive, negative) pairs
/// that the scores order rightly, a tie counting half. NaN without pairs of both classes.
pub fn auc(pairs: &[(f64, f64)]) -> f64 {
    let Some(buckets) = Buckets::of(pairs) else {
        return f64::NAN;
    };
    let parts: Vec<Part> = pairs
        .par_chunks(pairs.len().div_ceil(rayon::current_num_threads()))
        .map(|chunk| Part::new(chunk, &buckets))
        .collect();
    let negatives: usize = parts.iter().map(|p| p.starts[buckets.count]).sum();
    let positives = pairs.len() - negatives;
    // Twice the pairs won, a tie counting one.
    let twice_won: u64 = (0..buckets.count)
        .into_par_iter()
        .with_min_len(64)
        .map_init(
            || (Vec::new(), Vec::new()),
            |(positive, negative), b| {
                positive.clear();
                negative.clear();
                for part in &parts {
                    negative.extend_from_slice(part.bucket(false, b, buckets.count));
                    positive.extend_from_slice(part.bucket(true, b, buckets.count));
                }
                let below: usize = parts.iter().map(|p| p.starts[b]).sum();
                if positive.is_empty() {
                    return 0;
                }
                sort(positive);
                sort(negative);
                2 * (positive.len() * below) as u64 + twice_won_sorted(positive, negative)
            },
        )
        .sum();
    twice_won as f64 / 2.0 / (positives as f64 * negatives as f64)
}

/// An integer for each score, in the scores' order; 0 and -0 are one score.
fn key(score: f64) -> u64 {
    let bits = if score == 0.0 { 0 } else { score.to_bits() };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Consecutive ranges of keys, of equal width, from the lowest key to the highest.
struct Buckets {
    lowest: u64,
    shift: u32,
    count: usize,
}

impl Buckets {
    /// The buckets that cover the keys of `pairs`' scores; none without pairs.
    fn of(pairs: &[(f64, f64)]) -> Option<Self> {
        let (lowest, highest) = pairs
            .par_chunks(1 << 16)
            .map(|chunk| {
                chunk
                    .iter()
                    .fold((u64::MAX, 0), |(low, high), &(score, _)| {
                        let k = key(score);
                        (low.min(k), high.max(k))
                    })
            })
            .reduce_with(|a, b| (a.0.min(b.0), a.1.max(b.1)))?;
        let span = highest - lowest;
        let shift = (u64::BITS - span.leading_zeros()).saturating_sub(BUCKET_BITS);
        Some(Self {
            lowest,
            shift,
            count: (span >> shift) as usize + 1,
        })
    }

    fn of_key(&self, key: u64) -> usize {
        ((key - self.lowest) >> self.shift) as usize
    }
}

/// One thread's share of the pairs as keys, grouped by class (negatives first), then by
/// bucket.
struct Part {
    keys: Vec<u64>,
    /// Where each (class, bucket) group starts in `keys`, and the keys' count last.
    starts: Vec<usize>,
}

impl Part {
    fn new(pairs: &[(f64, f64)], buckets: &Buckets) -> Self {
        let group = |&(score, y): &(f64, f64)| {
            usize::from(y == 1.0) * buckets.count + buckets.of_key(key(score))
        };
        let mut starts = vec![0; 2 * buckets.count + 1];
        for pair in pairs {
            starts[group(pair)] += 1;
        }
        let mut next = 0;
        for s in starts.iter_mut() {
            (*s, next) = (next, next + *s);
        }
        let mut places = starts.clone();
        let mut keys = vec![0; pairs.len()];
        for pair in pairs {
            let place = &mut places[group(pair)];
            keys[*place] = key(pair.0);
            *place += 1;
        }
        Self { keys, starts }
    }

    /// The keys of bucket `b` of the positives or of the negatives.
    fn bucket(&self, positive: bool, b: usize, buckets: usize) -> &[u64] {
        let group = usize::from(positive) * buckets + b;
        &self.keys[self.starts[group]..self.starts[group + 1]]
    }
}

/// Twice the (positive, negative) pairs whose positive key is the higher, a tie counting
/// once, of sorted keys.
fn twice_won_sorted(positive: &[u64], negative: &[u64]) -> u64 {
    let (mut below, mut twice_won) = (0usize, 0u64);
    let mut i = 0;
    while i < positive.len() {
        let score = positive[i];
        let mut same = i;
        while same < positive.len() && positive[same] == score {
            same += 1;
        }
        while below < negative.len() && negative[below] < score {
            below += 1;
        }
        let mut tied = below;
        while tied < negative.len() && negative[tied] == score {
            tied += 1;
        }
        twice_won += (same - i) as u64 * (2 * below + (tied - below)) as u64;
        i = same;
    }
    twice_won
}

/// Sorts one bucket's keys: compared when few, by digits when many (a bucket of a
/// crowded range of scores).
fn sort(keys: &mut Vec<u64>) {
    if keys.len() < RADIX_FROM {
        keys.sort_unstable();
    } else {
        radix_sort(keys);
    }
}

/// Sorts `keys` by 11-bit digits, least significant first, with a pass per digit that the
/// keys do not all share: a few sequential reads and writes of the keys, where a comparison
/// sort makes about log₂ n of them, out of order. Every digit's counts come from one read.
fn radix_sort(keys: &mut Vec<u64>) {
    const BITS: u32 = 11;
    const DIGITS: usize = u64::BITS.div_ceil(BITS) as usize;
    const MASK: u64 = (1 << BITS) - 1;
    let mut counts = vec![[0usize; 1 << BITS]; DIGITS];
    for &k in keys.iter() {
        for (d, c) in counts.iter_mut().enumerate() {
            c[((k >> (d as u32 * BITS)) & MASK) as usize] += 1;
        }
    }
    let mut spare = vec![0u64; keys.len()];
    for (d, mut starts) in counts.into_iter().enumerate() {
        if starts.contains(&keys.len()) {
            continue;
        }
        let mut next = 0;
        for c in starts.iter_mut() {
            (*c, next) = (next, next + *c);
        }
        let shift = d as u32 * BITS;
        for &k in keys.iter() {
            let slot = &mut starts[((k >> shift) & MASK) as usize];
            spare[*slot] = k;
            *slot += 1;
        }
        std::mem::swap(keys, &mut spare);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::rng::Rng;

    /// The share of (positive, negative) pairs ordered rightly, pair by pair.
    fn counted(pairs: &[(f64, f64)]) -> f64 {
        let (mut won, mut total) = (0.0, 0.0);
        for &(p, _) in pairs.iter().filter(|(_, y)| *y == 1.0) {
            for &(n, _) in pairs.iter().filter(|(_, y)| *y != 1.0) {
                total += 1.0;
                won += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        won / total
    }

    #[test]
    fn counts_ties_half() {
        assert_eq!(
            auc(&[(0.1, 0.0), (0.4, 0.0), (0.35, 1.0), (0.8, 1.0)]),
            0.75
        );
        assert_eq!(auc(&[(0.5, 0.0), (0.5, 1.0)]), 0.5);
        assert!(auc(&[]).is_nan());
        assert!(auc(&[(0.3, 1.0), (0.4, 1.0)]).is_nan());
    }

    #[test]
    fn is_the_share_of_pairs_ordered_rightly() {
        // Scores of either sign with many ties (and 0 beside -0).
        let mut rng = Rng::keyed(3, 0, 0);
        let pairs: Vec<(f64, f64)> = (0..2000)
            .map(|i| {
                let score = ((rng.uniform() - 0.5) * 40.0).round() / 7.0;
                let score = if i % 97 == 0 { -0.0 } else { score };
                (
                    score,
                    f64::from(u8::from(rng.uniform() < 0.3 + score.max(0.0) / 10.0)),
                )
            })
            .collect();
        assert!((auc(&pairs) - counted(&pairs)).abs() < 1e-15);
    }

    #[test]
    fn crowded_buckets_are_sorted_by_digits() {
        // Most scores within a few units in the last place of 0.5 and two far outliers:
        // nearly every key falls in one bucket, radix sorted, ties included.
        let mut rng = Rng::keyed(5, 0, 0);
        let mut pairs: Vec<(f64, f64)> = (0..3 * RADIX_FROM)
            .map(|_| {
                let ulps = (rng.uniform() * 40.0) as u64;
                let score = f64::from_bits(0.5f64.to_bits() + ulps);
                (
                    score,
                    f64::from(u8::from(rng.uniform() < 0.2 + ulps as f64 / 80.0)),
                )
            })
            .collect();
        pairs.extend([(1e-300, 1.0), (1.0, 0.0), (f64::MIN_POSITIVE, 0.0)]);
        assert!((auc(&pairs) - counted(&pairs)).abs() < 1e-15);
    }
}
