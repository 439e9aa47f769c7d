//! Asking the cache for memory ahead of its use.

/// Asks the cache for every line of `values` ahead of their use: where rows are read in
/// scattered order, waiting for each in turn leaves a pass bound by memory latency rather
/// than bandwidth.
#[inline(always)]
pub fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = values.as_ptr().cast::<i8>();
        let skew = start as usize % 64;
        for offset in (0..std::mem::size_of_val(values) + skew).step_by(64) {
            // SAFETY: a prefetch only hints the cache; it never faults.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.wrapping_sub(skew).wrapping_add(offset),
                )
            };
        }
    }
    // Stable Rust has no prefetch intrinsic elsewhere: the hardware prefetchers are left to it.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}
