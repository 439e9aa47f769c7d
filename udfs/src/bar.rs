//! `BAR(value, min, max [, width])`: a bar of Unicode blocks as long as `value` is far from
//! `min` towards `max`, for reading a column as a picture in a table (DuckDB's and
//! ClickHouse's `bar`).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// Characters a bar is as wide as unless given.
pub const DEFAULT_WIDTH: i64 = 80;
/// The widest bar.
pub const MAX_WIDTH: i64 = 1000;

/// Eighths of a character cell, from one eighth to a full block.
const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "A horizontal bar of Unicode blocks for value on the scale from min to max, in \
         eighths of a character: empty at min or below, width characters at max or above. \
         NULL when any argument is NULL.",
        "bar(value, min, max[, width])",
    )
    .with_argument("value", "The number to draw.")
    .with_argument("min", "The value of an empty bar.")
    .with_argument("max", "The value of a full bar; larger than min.")
    .with_argument(
        "width",
        "Characters of a full bar, from 1 to 1000; 80 when left out.",
    )
    .with_sql_example(
        "```sql\n\
         SELECT plan, count(*) AS n, bar(count(*), 0, 5000, 30) AS customers\n\
         FROM customers GROUP BY plan ORDER BY n DESC;\n\
         ```",
    )
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Bar {
    signature: Signature,
}

impl Default for Bar {
    fn default() -> Self {
        let f = DataType::Float64;
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![f.clone(), f.clone(), f.clone()]),
                    TypeSignature::Exact(vec![f.clone(), f.clone(), f, DataType::Int64]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for Bar {
    fn name(&self) -> &str {
        "bar"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let numbers = arrays[..3]
            .iter()
            .map(|a| {
                Ok(cast(a, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone())
            })
            .collect::<Result<Vec<_>>>()?;
        let widths = match arrays.get(3) {
            Some(w) => Some(
                cast(w, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            None => None,
        };
        let (value, min, max) = (&numbers[0], &numbers[1], &numbers[2]);
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            let width = match &widths {
                Some(w) if w.is_null(i) => None,
                Some(w) => Some(w.value(i)),
                None => Some(DEFAULT_WIDTH),
            };
            if value.is_null(i) || min.is_null(i) || max.is_null(i) {
                out.push(None);
                continue;
            }
            let Some(width) = width else {
                out.push(None);
                continue;
            };
            if !(1..=MAX_WIDTH).contains(&width) {
                return exec_err!("bar: width must be from 1 to {MAX_WIDTH}, got {width}");
            }
            let (lo, hi) = (min.value(i), max.value(i));
            // NaN bounds are refused with the rest.
            if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                return exec_err!(
                    "bar: min must be less than max, got min {lo} and max {hi}; the scale \
                     runs from min (empty) to max (full)"
                );
            }
            out.push(Some(draw(value.value(i), lo, hi, width as usize)));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The bar for `value` on `lo..hi`, `width` characters when full.
fn draw(value: f64, lo: f64, hi: f64, width: usize) -> String {
    let share = ((value - lo) / (hi - lo)).clamp(0.0, 1.0);
    let share = if share.is_nan() { 0.0 } else { share };
    let eighths = (share * (width * 8) as f64).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    if let Some(part) = (eighths % 8).checked_sub(1) {
        bar.push(EIGHTHS[part]);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_in_eighths() {
        assert_eq!(draw(5.0, 0.0, 10.0, 4), "██");
        assert_eq!(draw(10.0 / 32.0 * 3.0, 0.0, 10.0, 4), "▍");
        assert_eq!(draw(11.0, 0.0, 10.0, 3), "███");
        assert_eq!(draw(-1.0, 0.0, 10.0, 3), "");
        assert_eq!(draw(0.5625, 0.0, 1.0, 2), "█▏");
    }
}
