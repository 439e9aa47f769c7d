//! `cohort_row_hash`: a number in [0, 1) from a hash of a row's values and a seed, which
//! CREATE MODEL draws its evaluation rows and cross-validation folds by. The same values
//! give the same number on every run and every machine (it hashes the values' text, not
//! their memory), whatever order the rows come in. Not registered by name: the engine puts
//! it in the plans it builds, and the cluster codec carries it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::sql::argument_arrays;

/// The function for `seed` over `arity` columns.
pub fn row_hash(seed: u64, arity: usize) -> ScalarUDF {
    ScalarUDF::new_from_impl(RowHash::new(seed, arity))
}

/// A hash of a row's values and a seed, as a number uniform in [0, 1): the same for the
/// same values on every run and every machine (it hashes the values' text, not their
/// memory).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RowHash {
    pub seed: u64,
    /// The number of columns it hashes.
    pub arity: usize,
    signature: Signature,
}

impl RowHash {
    pub fn new(seed: u64, arity: usize) -> Self {
        Self {
            seed,
            arity,
            signature: Signature::any(arity, Volatility::Immutable),
        }
    }
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// FNV-1a of `bytes`.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The hashes of `rows` rows of `columns`, each uniform in [0, 1).
fn row_hashes(columns: &[ArrayRef], rows: usize, seed: u64) -> Result<Vec<f64>> {
    let mut h = vec![mix(seed ^ 0x5EED_5EED_5EED_5EED); rows];
    for c in columns {
        let text = cast(c, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        for (r, h) in h.iter_mut().enumerate() {
            let v = if text.is_null(r) {
                0x9E37_79B9_7F4A_7C15
            } else {
                fnv(text.value(r).as_bytes())
            };
            *h = mix(*h ^ v);
        }
    }
    Ok(h.into_iter()
        .map(|h| (h >> 11) as f64 / (1u64 << 53) as f64)
        .collect())
}

impl ScalarUDFImpl for RowHash {
    fn name(&self) -> &str {
        "cohort_row_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = argument_arrays(&args)?;
        let hashes = row_hashes(&columns, args.number_rows, self.seed)?;
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(hashes))))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};

    use super::*;

    fn reversed_b() -> ArrayRef {
        Arc::new(StringArray::from(vec!["x", "y", "z", "x"]))
    }

    #[test]
    fn hashes_depend_on_values_and_seed_only() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(1)]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "z", "x"]));
        let h = row_hashes(&[a.clone(), b.clone()], 4, 42).unwrap();
        assert_eq!(h[0], h[3], "equal rows hash alike");
        assert!(h.iter().all(|v| (0.0..1.0).contains(v)));
        let reversed = row_hashes(&[b, a.clone()], 4, 42).unwrap();
        assert_ne!(h[0], reversed[0], "column order matters");
        let other_seed = row_hashes(&[a, reversed_b()], 4, 7).unwrap();
        assert_ne!(h[0], other_seed[0], "the seed matters");
        // Uniform enough: of 10,000 rows, close to a fifth below 0.2.
        let many: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10_000));
        let h = row_hashes(&[many], 10_000, 42).unwrap();
        let below = h.iter().filter(|v| **v < 0.2).count();
        assert!((1900..2100).contains(&below), "{below}");
    }
}
