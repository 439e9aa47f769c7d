//! Slows down password guessing: after [`FREE_FAILURES`] failed logins for one user name
//! within [`WINDOW`], each further attempt for that name waits first, one second doubling
//! per failure up to [`LONGEST_WAIT`]. Other names are not slowed, and a successful login
//! clears its name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins a name may have without waiting.
const FREE_FAILURES: u32 = 5;
/// How long a failure counts; a name with none for this long is forgotten.
const WINDOW: Duration = Duration::from_secs(60);
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// Most names tracked, so that logins under random names cannot grow memory without bound.
const MOST_NAMES: usize = 10_000;

/// Failed logins by user name.
#[derive(Debug)]
pub struct Throttle {
    names: Mutex<HashMap<String, Failures>>,
    most_names: usize,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with_capacity(MOST_NAMES)
    }
}

impl Throttle {
    fn with_capacity(most_names: usize) -> Self {
        Self {
            names: Mutex::new(HashMap::new()),
            most_names,
        }
    }

    /// Records a login attempt for `name` at `now`, and says how long it must wait before
    /// being checked and answered, and whether this is the one that starts the waiting.
    /// The attempt counts as failed until [`Throttle::succeeded`] says otherwise, so
    /// attempts sent all at once wait in turn instead of together.
    pub fn attempt(&self, name: &str, now: Instant) -> Attempt {
        let mut names = match self.names.lock() {
            Ok(n) => n,
            Err(poisoned) => poisoned.into_inner(),
        };
        let earlier = match names.get_mut(name) {
            Some(f) if now.saturating_duration_since(f.last) <= WINDOW => f.count,
            _ => 0,
        };
        if earlier == 0 && !names.contains_key(name) && names.len() >= self.most_names {
            make_room(&mut names, now, self.most_names);
        }
        names.insert(
            name.to_string(),
            Failures {
                count: earlier + 1,
                last: now,
            },
        );
        Attempt {
            wait: wait_after(earlier),
            starts_waiting: earlier == FREE_FAILURES,
        }
    }

    /// A login for `name` succeeded: its failures are forgotten.
    pub fn succeeded(&self, name: &str) {
        if let Ok(mut names) = self.names.lock() {
            names.remove(name);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.lock().map_or(0, |n| n.len())
    }
}

/// What [`Throttle::attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub wait: Duration,
    /// The first attempt of a name that waits, worth one line in the log.
    pub starts_waiting: bool,
}

/// The wait of an attempt after `failures` failed ones.
fn wait_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(doublings) => FIRST_WAIT
            .checked_mul(1 << doublings.min(16))
            .map_or(LONGEST_WAIT, |w| w.min(LONGEST_WAIT)),
    }
}

/// Forgets the names with no failure in the window; if all are recent, the one with the
/// fewest failures, which is the least worth slowing down (a name being guessed at has
/// many).
fn make_room(names: &mut HashMap<String, Failures>, now: Instant, most_names: usize) {
    names.retain(|_, f| now.saturating_duration_since(f.last) <= WINDOW);
    if names.len() < most_names {
        return;
    }
    let fewest = names
        .iter()
        .min_by_key(|(_, f)| (f.count, f.last))
        .map(|(name, _)| name.clone());
    if let Some(name) = fewest {
        names.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(t: &Throttle, name: &str, now: Instant, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| t.attempt(name, now).wait.as_secs())
            .collect()
    }

    #[test]
    fn waits_after_five_failures_doubling_to_thirty_seconds() {
        let t = Throttle::default();
        let now = Instant::now();
        assert_eq!(
            waits(&t, "ana", now, 12),
            [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]
        );
        // Other names are not slowed.
        assert_eq!(waits(&t, "bob", now, 1), [0]);
        // Only the sixth attempt says the waiting starts.
        let fresh = Throttle::default();
        let starts: Vec<bool> = (0..8)
            .map(|_| fresh.attempt("ana", now).starts_waiting)
            .collect();
        assert_eq!(starts.iter().filter(|s| **s).count(), 1);
        assert!(starts[5]);
    }

    #[test]
    fn success_resets_and_old_failures_expire() {
        let t = Throttle::default();
        let now = Instant::now();
        waits(&t, "ana", now, 7);
        t.succeeded("ana");
        assert_eq!(waits(&t, "ana", now, 6), [0, 0, 0, 0, 0, 1]);
        // A minute without failures forgets them.
        let later = now + WINDOW + Duration::from_secs(1);
        assert_eq!(waits(&t, "ana", later, 1), [0]);
        // Failures spread over less than a minute each still add up.
        let t = Throttle::default();
        let mut at = now;
        for _ in 0..5 {
            at += Duration::from_secs(50);
            t.attempt("ana", at);
        }
        assert_eq!(
            t.attempt("ana", at + Duration::from_secs(50)).wait,
            FIRST_WAIT
        );
    }

    #[test]
    fn bounded_keeping_the_names_being_guessed() {
        let t = Throttle::with_capacity(100);
        let now = Instant::now();
        waits(&t, "ana", now, 6);
        for i in 0..1000 {
            t.attempt(&format!("random{i}"), now);
        }
        assert!(t.len() <= 100, "{}", t.len());
        assert_eq!(waits(&t, "ana", now, 1), [2]);
        // Names idle for over a minute go first.
        let later = now + WINDOW + Duration::from_secs(1);
        t.attempt("bob", later);
        assert_eq!(t.len(), 1);
    }
}
