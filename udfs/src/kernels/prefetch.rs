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
            line(start.wrapping_sub(skew).wrapping_add(offset));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// Asks the cache for share `part` of `parts` of the lines of `columns` (of equal lengths):
/// a pass that computes on some rows while the next arrive spreads its requests over its
/// work, as a core keeps only so many misses in flight and a burst of them stalls it.
#[inline(always)]
pub fn prefetch_share(columns: &[&[f64]], part: usize, parts: usize) {
    let per = columns.first().map_or(0, |c| c.len().div_ceil(8));
    let lines = columns.len() * per;
    for l in lines * part / parts..lines * (part + 1) / parts {
        prefetch_line(&columns[l / per][l % per * 8]);
    }
}

/// Asks the cache for the line that holds `value`: for a pass that reads many columns a
/// little at a time, where the hardware prefetchers, which stop at each page's end, would
/// leave most of its reads waiting on memory.
#[inline(always)]
fn prefetch_line<T>(value: &T) {
    line(std::ptr::from_ref(value).cast::<i8>());
}

#[inline(always)]
fn line(at: *const i8) {
    // SAFETY: a prefetch only hints the cache; it never faults.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at)
    };
    // Stable Rust has no prefetch intrinsic elsewhere: the hardware prefetchers are left to it.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
