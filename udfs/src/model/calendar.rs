//! Civil (proleptic Gregorian) dates as day numbers since 1970-01-01, after Howard
//! Hinnant's algorithms: what stepping by calendar months needs, without a date library.

/// (year, month 1..=12, day) of a day number, by Hinnant's civil calendar algorithm.
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day number of (year, month, day).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn month_length(y: i64, m: i64) -> i64 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

/// The day `months` calendar months after the day `days`: the day of the month is kept,
/// clamped to the month's length, and month ends stay month ends.
pub fn add_months(days: i64, months: i64) -> i64 {
    let (y, m, d) = civil(days);
    let index = y * 12 + (m - 1) + months;
    let (ny, nm) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    let end = d == month_length(y, m);
    let nd = if end {
        month_length(ny, nm)
    } else {
        d.min(month_length(ny, nm))
    };
    days_from_civil(ny, nm, nd)
}
