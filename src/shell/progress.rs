//! The one-line progress display on standard error while a statement runs.
//!
//! It appears after [`DELAY`], so quick statements never show it, redraws itself from the
//! engine's [`Progress`] on indicatif's own ticker thread, and is cleared when it is
//! dropped: when the first row arrives, or the statement fails or is cancelled.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::engine::progress::{Progress, Snapshot};

/// How long a statement runs before its progress shows.
pub const DELAY: Duration = Duration::from_secs(1);

/// Redraws per second.
const RATE: Duration = Duration::from_millis(100);

/// Width of the bar, in characters, when the total is known.
const BAR: usize = 20;

/// The display of one statement; clears itself when dropped.
pub struct Ticker {
    bar: ProgressBar,
    /// Set when the display goes, so a late start does not draw it again.
    gone: Arc<Mutex<bool>>,
}

impl Ticker {
    pub fn start(progress: Arc<Progress>) -> Self {
        let started = Instant::now();
        let style = ProgressStyle::with_template("{spinner} {state}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key(
                "state",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let line = describe(progress.snapshot(), started.elapsed());
                    // One line that never wraps, so redrawing it in place works.
                    let (_, columns) = console::Term::stderr().size();
                    let room = usize::from(columns).saturating_sub(3);
                    let _ = w.write_str(&console::truncate_str(&line, room, "…"));
                },
            );
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(style);
        let gone = Arc::new(Mutex::new(false));
        let (shown, flag) = (bar.clone(), gone.clone());
        tokio::spawn(async move {
            tokio::time::sleep(DELAY).await;
            if let Ok(gone) = flag.lock()
                && !*gone
            {
                // Drawn whether or not standard error is a terminal: the shell asks only
                // when it is, and --progress asks for it anyway.
                shown.set_draw_target(ProgressDrawTarget::term_like_with_hz(
                    Box::new(console::Term::stderr()),
                    10,
                ));
                shown.enable_steady_tick(RATE);
            }
        });
        Self { bar, gone }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Ok(mut gone) = self.gone.lock() {
            *gone = true;
            self.bar.finish_and_clear();
        }
    }
}

/// The line for `snapshot`, `elapsed` into the statement.
pub fn describe(snapshot: Snapshot, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let mut line = String::new();
    match snapshot {
        Snapshot::Unknown => {}
        Snapshot::Scan { rows, total, bytes } => {
            if let Some(total) = total {
                let done = rows as f64 / total as f64;
                let filled = ((done * BAR as f64) as usize).min(BAR);
                let _ = write!(
                    line,
                    "{}{} {:>3.0}% · {}/{} rows",
                    "█".repeat(filled),
                    "░".repeat(BAR - filled),
                    done * 100.0,
                    count(rows as f64),
                    count(total as f64)
                );
            } else {
                let _ = write!(line, "{} rows read", count(rows as f64));
            }
            if let Some(bytes) = bytes {
                let _ = write!(line, " · {}", indicatif::HumanBytes(bytes));
            }
            let _ = write!(line, " · {} rows/s", count(rows as f64 / seconds));
        }
        Snapshot::Reading { rows } => {
            let _ = write!(
                line,
                "reading training rows: {} · {} rows/s",
                count(rows as f64),
                count(rows as f64 / seconds)
            );
        }
        Snapshot::Fit {
            stage,
            pass,
            rows_per_second,
        } => {
            let _ = write!(line, "{stage} {pass}");
            if rows_per_second > 0.0 {
                let _ = write!(line, " · {} rows/s", count(rows_per_second));
            }
        }
    }
    if !line.is_empty() {
        line += " · ";
    }
    let _ = write!(line, "{seconds:.1} s");
    line
}

/// `n` in three significant digits with a k, M or G suffix.
fn count(n: f64) -> String {
    let (value, suffix) = match n {
        n if n >= 1e9 => (n / 1e9, "G"),
        n if n >= 1e6 => (n / 1e6, "M"),
        n if n >= 1e3 => (n / 1e3, "k"),
        n => return format!("{n:.0}"),
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohort_udfs::kernels::progress::Stage;

    #[test]
    fn lines_say_what_is_known() {
        let second = Duration::from_secs(2);
        assert_eq!(
            describe(
                Snapshot::Scan {
                    rows: 2_500_000,
                    total: Some(10_000_000),
                    bytes: None
                },
                second
            ),
            "█████░░░░░░░░░░░░░░░  25% · 2.50M/10.0M rows · 1.25M rows/s · 2.0 s"
        );
        assert_eq!(
            describe(
                Snapshot::Fit {
                    stage: Stage::Irls,
                    pass: 3,
                    rows_per_second: 6.2e6
                },
                second
            ),
            "IRLS pass 3 · 6.20M rows/s · 2.0 s"
        );
        assert_eq!(
            describe(Snapshot::Unknown, Duration::from_millis(1500)),
            "1.5 s"
        );
    }
}
