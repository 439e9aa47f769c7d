//! A per-row value folded over many columns: a linear predictor, a score.
//!
//! Read a column at a time, a batch's columns are many short runs (a few kilobytes each),
//! and the CPU's prefetchers, which start again at each run, leave the reads waiting on
//! memory: at 8 or 32 columns such a pass took about twice as long as summing the same
//! columns. Here the rows go in blocks whose running values stay in vector registers while a
//! group of columns updates them, so each group is a handful of long streams the prefetchers
//! keep up with, and each row's value is loaded and stored once per group rather than once
//! per column.

/// Rows updated together: their running values fill a few vector registers.
const ROWS: usize = 32;

/// Columns read together: eight streams are as many as the prefetchers keep up with (with 32
/// read at once they fall behind, and the pass slows by half again).
const GROUP: usize = 8;

/// `out[r] = update(out[r], term, column(term)[r])` for every row `r` of `out` and every
/// term in order, so the result is the same as a column at a time. Each term's column is at
/// least as long as `out`. Inlined, so that `update` compiles for the caller's vectors.
#[inline(always)]
pub fn fold_columns<T>(
    out: &mut [f64],
    terms: &[T],
    column: impl Fn(&T) -> &[f64],
    update: impl Fn(f64, &T, f64) -> f64,
) {
    for group in terms.chunks(GROUP) {
        let (blocks, tail) = out.as_chunks_mut::<ROWS>();
        for (b, block) in blocks.iter_mut().enumerate() {
            fold_rows(block, b * ROWS, group, &column, &update);
        }
        let start = blocks.len() * ROWS;
        for (r, value) in tail.iter_mut().enumerate() {
            fold_rows(
                std::array::from_mut(value),
                start + r,
                group,
                &column,
                &update,
            );
        }
    }
}

/// [`fold_columns`] over a group's terms for the `N` rows from `start`.
#[inline(always)]
fn fold_rows<T, const N: usize>(
    values: &mut [f64; N],
    start: usize,
    group: &[T],
    column: &impl Fn(&T) -> &[f64],
    update: &impl Fn(f64, &T, f64) -> f64,
) {
    let mut acc = *values;
    for term in group {
        for (a, x) in acc.iter_mut().zip(&column(term)[start..start + N]) {
            *a = update(*a, term, *x);
        }
    }
    *values = acc;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_a_column_at_a_time_for_every_shape() {
        // Term counts around the group size and row counts around the block size.
        for terms in [0, 1, 7, 8, 9, 17] {
            for rows in [0, 1, ROWS - 1, ROWS, ROWS + 3, 5 * ROWS + 1] {
                let columns: Vec<(f64, Vec<f64>)> = (0..terms)
                    .map(|j| {
                        let values = (0..rows).map(|r| ((r * 7 + j * 3) % 11) as f64 / 3.0);
                        (0.1 + j as f64, values.collect())
                    })
                    .collect();
                let update = |acc: f64, t: &(f64, Vec<f64>), x: f64| acc + t.0 * (x - 0.5);
                let mut want = vec![1.5; rows];
                for t in &columns {
                    for (w, x) in want.iter_mut().zip(&t.1) {
                        *w = update(*w, t, *x);
                    }
                }
                let mut got = vec![1.5; rows];
                fold_columns(&mut got, &columns, |t| &t.1, update);
                // The same operations in the same order: equal to the last bit.
                assert_eq!(got, want, "terms={terms} rows={rows}");
            }
        }
    }
}
