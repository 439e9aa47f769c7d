//! Calendar-month steps for time axes, on chrono's proleptic Gregorian dates. Days are
//! counted from 1970-01-01, as Arrow's `Date32` counts them.

use chrono::{Datelike, Months, NaiveDate};

/// The date of a day number; `None` outside chrono's range (about ±262,000 years).
pub fn date(days: i64) -> Option<NaiveDate> {
    NaiveDate::from_epoch_days(i32::try_from(days).ok()?)
}

/// The day `months` calendar months after the day `days`: the day of the month is kept,
/// clamped to the month's length, and month ends stay month ends (chrono alone would take
/// 29 February to 29 March, not 31 March). `None` outside chrono's range.
pub fn add_months(days: i64, months: i64) -> Option<i64> {
    let from = date(days)?;
    let step = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    let to = if months >= 0 {
        from.checked_add_months(step)?
    } else {
        from.checked_sub_months(step)?
    };
    let to = if from.day() == u32::from(from.num_days_in_month()) {
        to.with_day(u32::from(to.num_days_in_month()))?
    } else {
        to
    };
    Some(to.to_epoch_days().into())
}
