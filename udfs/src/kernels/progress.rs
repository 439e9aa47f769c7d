//! How far a fit has got, for a progress display.
//!
//! The kernels count their passes with [`pass`]; whoever runs a fit and wants to show its
//! progress makes a [`FitProgress`], runs the fit inside [`FitProgress::during`] and reads
//! it from another thread. Without one, counting costs a thread-local lookup per pass.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a pass of a fit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// Iteratively reweighted least squares (logistic regression).
    Irls = 1,
    /// Lloyd iterations of k-means.
    Lloyd,
    /// Alternating least squares (matrix factorization).
    Als,
    /// Trees of gradient boosting.
    Boosting,
    /// Newton or quasi-Newton steps on a likelihood (customer value).
    Likelihood,
}

impl Stage {
    fn from_u8(n: u8) -> Option<Self> {
        [
            Stage::Irls,
            Stage::Lloyd,
            Stage::Als,
            Stage::Boosting,
            Stage::Likelihood,
        ]
        .into_iter()
        .find(|s| *s as u8 == n)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Irls => "IRLS pass",
            Stage::Lloyd => "k-means iteration",
            Stage::Als => "ALS sweep",
            Stage::Boosting => "boosting round",
            Stage::Likelihood => "likelihood step",
        })
    }
}

/// The stage a fit is in and how many of its passes have started.
#[derive(Debug, Default)]
pub struct FitProgress {
    stage: AtomicU8,
    passes: AtomicU64,
    /// When the fit's first pass started.
    started: Mutex<Option<Instant>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<FitProgress>>> = const { RefCell::new(None) };
}

impl FitProgress {
    /// Runs `f` with this progress as the current thread's, so the kernels `f` calls count
    /// their passes in it.
    pub fn during<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<FitProgress>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(self.clone())));
        f()
    }

    /// The current stage, the passes started in it and when the first pass started.
    pub fn get(&self) -> Option<(Stage, u64, Instant)> {
        let stage = Stage::from_u8(self.stage.load(Ordering::Relaxed))?;
        let started = (*self.started.lock().ok()?)?;
        Some((stage, self.passes.load(Ordering::Relaxed), started))
    }
}

/// Counts a pass of `stage` starting, in the current thread's progress if it has one; a new
/// stage starts its count again.
pub fn pass(stage: Stage) {
    CURRENT.with(|c| {
        if let Some(p) = c.borrow().as_ref() {
            if p.stage.swap(stage as u8, Ordering::Relaxed) != stage as u8 {
                p.passes.store(0, Ordering::Relaxed);
                if let Ok(mut started) = p.started.lock() {
                    *started = Some(Instant::now());
                }
            }
            p.passes.fetch_add(1, Ordering::Relaxed);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_passes_per_stage_only_where_asked() {
        pass(Stage::Irls);
        let progress = Arc::new(FitProgress::default());
        assert!(progress.get().is_none());
        progress.during(|| {
            pass(Stage::Lloyd);
            pass(Stage::Irls);
            pass(Stage::Irls);
        });
        pass(Stage::Irls);
        let (stage, passes, _) = progress.get().unwrap();
        assert_eq!((stage, passes), (Stage::Irls, 2));
        assert_eq!(Stage::Irls.to_string(), "IRLS pass");
    }
}
