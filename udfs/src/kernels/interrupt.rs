//! Stopping a fit that nobody waits for any more.
//!
//! A statement that times out or is cancelled drops its future, but a fit running on a
//! blocking thread would go on to its end, holding cores and memory. Its caller raises an
//! [`Interrupt`] instead, and the kernels look at it between passes and stop early. What an
//! interrupted kernel returns is unfinished, so whoever raises an interrupt throws the result
//! away.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag shared by the caller of a fit and the fit.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

thread_local! {
    static CURRENT: RefCell<Option<Interrupt>> = const { RefCell::new(None) };
}

impl Interrupt {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Runs `f` with this interrupt as the current thread's, so the kernels `f` calls see it
    /// without every signature carrying it.
    pub fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Interrupt>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(self.clone())));
        f()
    }

    /// The current thread's interrupt (one never raised when there is none), for work the
    /// thread hands to other threads.
    pub fn current() -> Self {
        CURRENT.with(|c| c.borrow().clone()).unwrap_or_default()
    }

    /// A guard that raises this interrupt when dropped: held by the future that waits for the
    /// fit, it stops the fit when the future is dropped unfinished.
    pub fn raise_on_drop(&self) -> RaiseOnDrop {
        RaiseOnDrop(self.clone())
    }
}

/// See [`Interrupt::raise_on_drop`].
#[derive(Debug)]
pub struct RaiseOnDrop(Interrupt);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// Whether the current thread's interrupt is raised: a kernel's loops stop when it is.
pub fn interrupted() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(Interrupt::is_raised))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_only_during_and_by_handed_copies() {
        let interrupt = Interrupt::default();
        interrupt.during(|| {
            assert!(!interrupted());
            interrupt.raise();
            assert!(interrupted());
            let handed = Interrupt::current();
            assert!(
                std::thread::spawn(move || handed.is_raised())
                    .join()
                    .unwrap()
            );
            // Another thread has no current interrupt of its own.
            assert!(!std::thread::spawn(interrupted).join().unwrap());
        });
        assert!(!interrupted());
    }

    #[test]
    fn raised_when_the_guard_is_dropped() {
        let interrupt = Interrupt::default();
        drop(interrupt.raise_on_drop());
        assert!(interrupt.is_raised());
    }
}
