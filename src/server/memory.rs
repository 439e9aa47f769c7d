//! A session's share of memory: each Flight SQL client's queries may hold at most
//! `--session-memory-limit`, drawn from the server's own pool (`--memory-limit`), so one
//! client cannot starve the others and all together stay within the server's limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, human_readable_size,
};

/// One session's pool: counts what its queries hold and passes every reservation on to the
/// server's pool.
#[derive(Debug)]
pub struct SessionMemory {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl SessionMemory {
    pub fn new(shared: Arc<dyn MemoryPool>, limit: usize) -> Self {
        Self {
            shared,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for SessionMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session pool of {} within {}",
            human_readable_size(self.limit),
            self.shared
        )
    }
}

impl MemoryPool for SessionMemory {
    fn name(&self) -> &str {
        "session"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.shared.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.shared.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let before = self.used.fetch_add(additional, Ordering::Relaxed);
        if before.saturating_add(additional) > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} needs {} more, past this session's memory limit of {} ({} held); \
                 the query spills to disk where it can: filter or aggregate the rows first, \
                 or ask the administrator to raise --session-memory-limit",
                reservation.consumer().name(),
                human_readable_size(additional),
                human_readable_size(self.limit),
                human_readable_size(before),
            )));
        }
        self.shared
            .try_grow(reservation, additional)
            .inspect_err(|_| {
                self.used.fetch_sub(additional, Ordering::Relaxed);
            })
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.shared.memory_limit() {
            MemoryLimit::Finite(shared) => MemoryLimit::Finite(shared.min(self.limit)),
            _ => MemoryLimit::Finite(self.limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    use super::*;

    #[test]
    fn a_session_holds_at_most_its_limit_of_the_shared_pool() {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let a: Arc<dyn MemoryPool> = Arc::new(SessionMemory::new(shared.clone(), 600));
        let b: Arc<dyn MemoryPool> = Arc::new(SessionMemory::new(shared.clone(), 600));
        let ra = MemoryConsumer::new("sort").register(&a);
        let rb = MemoryConsumer::new("join").register(&b);
        ra.try_grow(500).unwrap();
        let e = ra.try_grow(200).unwrap_err().to_string();
        assert!(e.contains("session's memory limit of 600.0 B"), "{e}");
        assert_eq!(a.reserved(), 500);
        // The other session is held by what is left of the shared pool.
        rb.try_grow(400).unwrap();
        assert!(rb.try_grow(200).is_err());
        assert_eq!((b.reserved(), shared.reserved()), (400, 900));
        ra.free();
        rb.try_grow(200).unwrap();
        assert_eq!(
            (a.reserved(), b.reserved(), shared.reserved()),
            (0, 600, 600)
        );
    }
}
