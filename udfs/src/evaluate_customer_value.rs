//! EVALUATE and CALIBRATION for customer_value models: the purchases each calibration
//! customer made after calibration_end, up to the model's holdout_end or else the last day
//! in the input, against the purchases the model expected over that time.
//!
//! Purchases on the same day are one, as in training. Rows of customers the model did not
//! see in calibration (or with a NULL customer or time) are skipped. Mergeable: a partial
//! state is the (customer, day) pairs after calibration_end it saw, as model indices, and
//! the last day seen.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StringArray, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int32Type, UInt32Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use rayon::prelude::*;

use crate::error::bad_input_err;
use crate::kernels::customer_value::PurchaseModel;
use crate::model::customer_value::show_day;
use crate::model::{CustomerValueModel, ResolvedModel};

/// Calibration frequencies are grouped 0, 1, ..., and this or more.
const TOP_GROUP: u32 = 7;

/// EVALUATE's columns.
pub fn summary_fields() -> Fields {
    Fields::from(vec![
        Field::new("customers", DataType::Int64, false),
        Field::new("holdout_actual", DataType::Float64, false),
        Field::new("holdout_predicted", DataType::Float64, false),
        Field::new("mae", DataType::Float64, true),
        Field::new("rmse", DataType::Float64, true),
    ])
}

/// CALIBRATION's columns.
pub fn group_fields() -> Fields {
    Fields::from(vec![
        Field::new("frequency", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("actual", DataType::Float64, false),
        Field::new("predicted", DataType::Float64, false),
    ])
}

/// The aggregate over (customer, time), bound to one model: one row of metrics, or with
/// `by_frequency` the list of calibration-frequency groups.
#[derive(Debug)]
pub struct Holdout {
    signature: Signature,
    model: ResolvedModel,
    by_frequency: bool,
}

impl Holdout {
    pub fn new(model: ResolvedModel, by_frequency: bool) -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
            model,
            by_frequency,
        }
    }
}

// A model version never changes, so name and version identify the aggregate.
impl PartialEq for Holdout {
    fn eq(&self, other: &Self) -> bool {
        (&self.model.name, self.model.version, self.by_frequency)
            == (&other.model.name, other.model.version, other.by_frequency)
    }
}

impl Eq for Holdout {}

impl std::hash::Hash for Holdout {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.model.name, self.model.version, self.by_frequency).hash(state);
    }
}

impl AggregateUDFImpl for Holdout {
    fn name(&self) -> &str {
        if self.by_frequency {
            "calibration"
        } else {
            "evaluate"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.by_frequency {
            DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(group_fields()),
                true,
            )))
        } else {
            DataType::Struct(summary_fields())
        })
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.model
            .downcast::<CustomerValueModel>(self.name())
            .map(|_| ())?;
        Ok(Box::new(HoldoutAccumulator {
            model: self.model.clone(),
            by_frequency: self.by_frequency,
            customers: vec![],
            days: vec![],
            last_day: None,
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
        Ok(vec![
            Arc::new(Field::new("customers", list(DataType::UInt32), true)),
            Arc::new(Field::new("days", list(DataType::Int32), true)),
            Arc::new(Field::new("last_day", DataType::Int32, true)),
        ])
    }
}

#[derive(Debug)]
struct HoldoutAccumulator {
    model: ResolvedModel,
    by_frequency: bool,
    /// Customers (model indices) and days of the purchases after calibration_end.
    customers: Vec<u32>,
    days: Vec<i32>,
    /// The last day in the input.
    last_day: Option<i32>,
}

impl HoldoutAccumulator {
    fn model(&self) -> Result<&CustomerValueModel> {
        self.model
            .downcast::<CustomerValueModel>(if self.by_frequency {
                "calibration"
            } else {
                "evaluate"
            })
    }
}

impl Accumulator for HoldoutAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let m = self.model()?;
        let positions = m.ids.positions(&values[0], "customer")?;
        let days = m.days(&values[1])?;
        let end = m.calibration_end;
        let mut last = self.last_day;
        let (mut customers, mut kept) = (Vec::new(), Vec::new());
        for (p, d) in positions.into_iter().zip(days) {
            let Some(d) = d else { continue };
            last = Some(last.map_or(d, |l| l.max(d)));
            if let Some(p) = p
                && d > end
            {
                customers.push(p);
                kept.push(d);
            }
        }
        self.customers.extend(customers);
        self.days.extend(kept);
        self.last_day = last;
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let last = states[2].as_primitive::<Int32Type>();
        for r in 0..states[0].len() {
            if !states[0].is_null(r) {
                let list = |c: usize| states[c].as_list::<i32>().value(r);
                self.customers
                    .extend(list(0).as_primitive::<UInt32Type>().values());
                self.days
                    .extend(list(1).as_primitive::<Int32Type>().values());
            }
            if last.is_valid(r) {
                let d = last.value(r);
                self.last_day = Some(self.last_day.map_or(d, |l| l.max(d)));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |values: ArrayRef, t: DataType| {
            ScalarValue::List(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(t, true)),
                OffsetBuffer::from_lengths([values.len()]),
                values,
                None,
            )))
        };
        Ok(vec![
            list(
                Arc::new(datafusion::arrow::array::UInt32Array::from(
                    self.customers.clone(),
                )),
                DataType::UInt32,
            ),
            list(
                Arc::new(datafusion::arrow::array::Int32Array::from(
                    self.days.clone(),
                )),
                DataType::Int32,
            ),
            ScalarValue::Int32(self.last_day),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let m = self.model()?;
        let end = m.calibration_end;
        let Some(holdout_end) = m.holdout_end.or(self.last_day) else {
            return bad_input_err!(
                "the input has no rows with a time: nothing to compare the model's \
                 predictions with"
            );
        };
        if holdout_end <= end {
            return bad_input_err!(
                "the input ends on {}, not after calibration_end {}: give the orders that \
                 run past calibration_end (all of them, not only the calibration rows)",
                show_day(holdout_end),
                show_day(end)
            );
        }
        let mut pairs: Vec<(u32, i32)> = self
            .customers
            .iter()
            .copied()
            .zip(self.days.iter().copied())
            .filter(|(_, d)| *d <= holdout_end)
            .collect();
        pairs.par_sort_unstable();
        pairs.dedup();
        let n = m.customers.len();
        let mut actual = vec![0.0; n];
        for (c, _) in pairs {
            actual[c as usize] += 1.0;
        }
        let horizon = f64::from(holdout_end - end) / m.time_unit.days().0;
        let purchases = m.purchases();
        let c = &m.customers;
        let predicted: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| purchases.expected_purchases(horizon, f64::from(c.x[i]), c.t_x[i], c.t[i]))
            .collect();
        if self.by_frequency {
            return group_list(&c.x, &actual, &predicted);
        }
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        let mean = |total: f64| (n > 0).then(|| total / n as f64);
        let abs: f64 = actual
            .iter()
            .zip(&predicted)
            .map(|(a, p)| (a - p).abs())
            .sum();
        let sq: f64 = actual
            .iter()
            .zip(&predicted)
            .map(|(a, p)| (a - p) * (a - p))
            .sum();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![n as i64])),
            Arc::new(Float64Array::from(vec![sum(&actual)])),
            Arc::new(Float64Array::from(vec![sum(&predicted)])),
            Arc::new(Float64Array::from(vec![mean(abs)])),
            Arc::new(Float64Array::from(vec![mean(sq).map(f64::sqrt)])),
        ];
        Ok(ScalarValue::Struct(Arc::new(StructArray::try_new(
            summary_fields(),
            columns,
            None,
        )?)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + 4 * (self.customers.capacity() + self.days.capacity())
    }
}

/// The mean actual and predicted holdout purchases of the customers with each calibration
/// frequency, 0 to [`TOP_GROUP`] or more, as a list of groups (those with customers).
fn group_list(x: &[u32], actual: &[f64], predicted: &[f64]) -> Result<ScalarValue> {
    let groups = TOP_GROUP as usize + 1;
    let (mut count, mut a, mut p) = (vec![0i64; groups], vec![0.0; groups], vec![0.0; groups]);
    for i in 0..x.len() {
        let g = x[i].min(TOP_GROUP) as usize;
        count[g] += 1;
        a[g] += actual[i];
        p[g] += predicted[i];
    }
    let present: Vec<usize> = (0..groups).filter(|&g| count[g] > 0).collect();
    let label = |g: usize| {
        if g == TOP_GROUP as usize {
            format!("{TOP_GROUP}+")
        } else {
            g.to_string()
        }
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            present.iter().map(|&g| label(g)),
        )),
        Arc::new(Int64Array::from_iter_values(
            present.iter().map(|&g| count[g]),
        )),
        Arc::new(Float64Array::from_iter_values(
            present.iter().map(|&g| a[g] / count[g] as f64),
        )),
        Arc::new(Float64Array::from_iter_values(
            present.iter().map(|&g| p[g] / count[g] as f64),
        )),
    ];
    let rows = StructArray::try_new(group_fields(), columns, None)?;
    Ok(ScalarValue::List(Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(
            DataType::Struct(group_fields()),
            true,
        )),
        OffsetBuffer::from_lengths([rows.len()]),
        Arc::new(rows),
        None,
    ))))
}
