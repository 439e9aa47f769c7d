//! The one place that knows which vector instructions the CPU has, and the one dispatch from
//! a kernel to the body compiled for them.
//!
//! A kernel is written once, generic over [`Simd`] (its multiply-adds through
//! [`Simd::mul_add`], its hand-written intrinsics chosen by [`Simd::LEVEL`]), and
//! [`dispatch`] runs it inside a function compiled for the widest level the CPU has, detected
//! once. Kernel bodies are `#[inline(always)]`, so they are compiled with that function's
//! target features; a closure would not be (it keeps its own definition's features).
//!
//! A small module of our own rather than a crate such as `pulp` or `multiversion`: the
//! kernels were already generic over their multiply-add, the dispatch is one `match`, and
//! several kernels need hand-written AVX2 or AVX-512 blocks that a portable-SIMD layer would
//! hide. `benches/compare.py` and the criterion benches measure the result against the
//! per-kernel copies it replaced.
//!
//! Soundness rests on one property: the types for the x86-64 levels are private to this
//! module, so code generic over [`Simd`] runs with [`Level::Avx2Fma`] or [`Level::Avx512`]
//! only when [`dispatch`] (or [`dispatch_at`]) has found that level on this CPU. A kernel
//! may therefore call a `#[target_feature]` function of its level in an `unsafe` block.

use std::sync::OnceLock;

/// An instruction set the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Scalar code the compiler vectorises for the baseline target, multiply and add apart
    /// (a fused multiply-add without hardware support is a slow library call).
    Plain,
    /// x86-64 with 256-bit AVX2 vectors and fused multiply-adds.
    Avx2Fma,
    /// x86-64 with AVX-512F (and AVX2 and FMA, which every AVX-512 CPU has).
    Avx512,
    /// aarch64: 128-bit NEON vectors and fused multiply-adds, both part of the baseline.
    Neon,
}

impl Level {
    /// Whether code at this level may use AVX2 and FMA instructions.
    pub const fn avx2_fma(self) -> bool {
        matches!(self, Level::Avx2Fma | Level::Avx512)
    }

    /// Whether code at this level may use AVX-512F instructions.
    pub const fn avx512(self) -> bool {
        matches!(self, Level::Avx512)
    }
}

/// The widest level this CPU runs, detected on the first call.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            return if has!("avx512f") {
                Level::Avx512
            } else {
                Level::Avx2Fma
            };
        }
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("neon") {
        return Level::Neon;
    }
    Level::Plain
}

/// Whether this CPU runs code compiled for `at`.
pub fn has(at: Level) -> bool {
    match at {
        Level::Plain => true,
        Level::Avx2Fma => level().avx2_fma(),
        Level::Avx512 => level().avx512(),
        Level::Neon => level() == Level::Neon,
    }
}

/// Every level this CPU runs, narrowest first: for tests that check each kernel body
/// against the others.
pub fn levels() -> Vec<Level> {
    [Level::Plain, Level::Neon, Level::Avx2Fma, Level::Avx512]
        .into_iter()
        .filter(|&at| has(at))
        .collect()
}

/// The instruction set a kernel body is compiled for. Sealed: only this module's types
/// implement it.
pub trait Simd: sealed::Sealed {
    const LEVEL: Level;

    /// Whether [`Self::mul_add`] is fused, one instruction.
    const FUSED: bool = !matches!(Self::LEVEL, Level::Plain);

    /// `a·b + c`, fused where the level has the instruction.
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        if Self::FUSED {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }

    /// `a·b + c` in f32, fused where the level has the instruction.
    #[inline(always)]
    fn mul_add_f32(a: f32, b: f32, c: f32) -> f32 {
        if Self::FUSED {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The baseline level; the only one code outside this module may name, as it needs no
/// feature the CPU might lack.
pub struct Plain;

#[cfg(target_arch = "x86_64")]
struct Avx2Fma;
#[cfg(target_arch = "x86_64")]
struct Avx512;
#[cfg(target_arch = "aarch64")]
struct Neon;

macro_rules! level_type {
    ($t:ident) => {
        impl sealed::Sealed for $t {}
        impl Simd for $t {
            const LEVEL: Level = Level::$t;
        }
    };
}
level_type!(Plain);
#[cfg(target_arch = "x86_64")]
level_type!(Avx2Fma);
#[cfg(target_arch = "x86_64")]
level_type!(Avx512);
#[cfg(target_arch = "aarch64")]
level_type!(Neon);

/// A kernel body, written once for every level.
pub trait Kernel {
    type Output;

    /// The body for level `S`; implementations are `#[inline(always)]` so that it is
    /// compiled with the features of the function [`dispatch`] calls it from.
    fn run<S: Simd>(self) -> Self::Output;
}

/// Runs `kernel` compiled for the widest level this CPU has.
#[inline]
pub fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    run(level(), kernel)
}

/// Runs `kernel` compiled for `at`, which this CPU must have ([`has`]).
pub fn dispatch_at<K: Kernel>(at: Level, kernel: K) -> K::Output {
    assert!(has(at), "{at:?} is not available on this CPU");
    run(at, kernel)
}

#[inline(always)]
fn run<K: Kernel>(level: Level, kernel: K) -> K::Output {
    match level {
        // SAFETY: callers pass `level()` or a level `has` accepts, so the CPU has the
        // features.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { run_avx512(kernel) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Level::Avx2Fma => unsafe { run_avx2_fma(kernel) },
        #[cfg(target_arch = "aarch64")]
        Level::Neon => kernel.run::<Neon>(),
        _ => kernel.run::<Plain>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<Avx512>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2_fma<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<Avx2Fma>()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fma(f64, f64, f64);

    impl Kernel for Fma {
        type Output = (Level, f64);
        #[inline(always)]
        fn run<S: Simd>(self) -> (Level, f64) {
            (S::LEVEL, S::mul_add(self.0, self.1, self.2))
        }
    }

    #[test]
    fn each_level_runs_its_own_body() {
        // 0.1 · 10 − 1 is 0 rounded twice and 2⁻⁵⁴·5 fused once.
        for level in levels() {
            let (ran, v) = dispatch_at(level, Fma(0.1, 10.0, -1.0));
            assert_eq!(ran, level);
            assert_eq!(v == 0.0, level == Level::Plain, "{level:?}: {v}");
        }
        assert_eq!(dispatch(Fma(1.0, 2.0, 3.0)), (level(), 5.0));
    }
}
