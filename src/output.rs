//! Writing results in the formats users ask for.
//!
//! One streaming writer serves the shell and the script runner: every format is written
//! batch by batch as the rows arrive, so a result of any size needs only one batch in memory
//! and `| head` ends the query early. Tables take their column widths from the first rows
//! (at most [`WIDTH_ROWS`]); the table and markdown formats show at most `maxrows` rows and
//! count the rest, show floats rounded to a few significant digits (the data formats keep
//! every digit), and a table may be written one field per line (`\x`).

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{
    JsonArray, LineDelimited, Writer as JsonWriter, WriterBuilder,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use unicode_width::UnicodeWidthStr;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned table with a row count, for people.
    Table,
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A GitHub-flavoured markdown table.
    Markdown,
}

impl Format {
    pub const NAMES: &'static str = "table, csv, json, ndjson, markdown";
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown format '{s}'; choose one of {}", Self::NAMES))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Markdown => "markdown",
        };
        f.write_str(name)
    }
}

/// Significant digits floats are shown with in table and markdown output, unless `\digits`
/// says otherwise: enough to read, few enough that columns stay narrow (DuckDB's habit).
pub const DEFAULT_DIGITS: usize = 6;

/// How a result is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub format: Format,
    /// Most rows written in the table and markdown formats; the rest are counted.
    pub maxrows: Option<usize>,
    /// Significant digits of floats in the table and markdown formats; `None` for all.
    pub digits: Option<usize>,
    /// Whether a table is written one field per line.
    pub expanded: Expanded,
}

impl Style {
    /// Every row, floats rounded for display, rows as table rows.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            maxrows: None,
            digits: Some(DEFAULT_DIGITS),
            expanded: Expanded::Off,
        }
    }

    /// Whether the format is for people (rounded, limited) rather than for programs.
    pub fn is_display(&self) -> bool {
        matches!(self.format, Format::Table | Format::Markdown)
    }
}

/// Whether a table is written as records, one field per line (psql's `\x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expanded {
    Off,
    On,
    /// Only a table wider than this many columns (the terminal's width).
    Wider(usize),
}

/// How many rows a result had and how many of them were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub rows: usize,
    pub shown: usize,
    /// False for statements that return no columns (DDL, SET, ...).
    pub has_columns: bool,
}

impl Summary {
    /// The line printed under a table: row count, rows left out, and the elapsed time.
    pub fn footer(&self, elapsed: Option<Duration>) -> String {
        let mut line = if self.has_columns {
            let noun = if self.rows == 1 { "row" } else { "rows" };
            format!("{} {noun}", self.rows)
        } else {
            "OK".to_string()
        };
        if self.shown < self.rows {
            line += &format!(
                " ({} shown, {} left out; change with --maxrows or \\maxrows)",
                self.shown,
                self.rows - self.shown
            );
        }
        if let Some(t) = elapsed {
            line += &format!(" in {:.3} s", t.as_secs_f64());
        }
        line
    }
}

/// Consumes `stream` and writes it to `out` in `style`. The data formats always write
/// every row, every digit.
pub async fn write_stream(
    out: &mut dyn Write,
    style: &Style,
    mut stream: SendableRecordBatchStream,
) -> Result<Summary> {
    let mut sink = Sink::new(out, style, stream.schema());
    while let Some(batch) = stream.next().await {
        sink.push(&batch?)?;
    }
    sink.finish()
}

/// Writes a collected result: the same output as [`write_stream`].
pub fn write_batches(
    out: &mut dyn Write,
    style: &Style,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Summary> {
    let mut sink = Sink::new(out, style, schema);
    for batch in batches {
        sink.push(batch)?;
    }
    sink.finish()
}

/// The output writer, remembering whether the reader went away: arrow's CSV writer reports
/// that only as text, and `| head` must still end quietly.
struct Guarded<'a> {
    inner: &'a mut dyn Write,
    broken: Arc<AtomicBool>,
}

impl Guarded<'_> {
    fn check<T>(&self, r: io::Result<T>) -> io::Result<T> {
        if r.as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            self.broken.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl Write for Guarded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.check(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.check(r)
    }
}

/// Rows of a table whose widths are taken from: enough to size the columns well, few
/// enough to print the first rows at once.
pub const WIDTH_ROWS: usize = 1000;

enum Encoder<'a> {
    /// A table or markdown, written to `out` row by row.
    Text(Box<Text>, Guarded<'a>),
    Csv(Box<datafusion::arrow::csv::Writer<Guarded<'a>>>),
    Json(JsonWriter<Guarded<'a>, JsonArray>),
    Ndjson(JsonWriter<Guarded<'a>, LineDelimited>),
}

/// A result being written batch by batch.
pub struct Sink<'a> {
    schema: SchemaRef,
    maxrows: Option<usize>,
    digits: Option<usize>,
    rows: usize,
    shown: usize,
    encoder: Encoder<'a>,
    broken: Arc<AtomicBool>,
}

impl<'a> Sink<'a> {
    pub fn new(out: &'a mut dyn Write, style: &Style, schema: SchemaRef) -> Self {
        let format = style.format;
        let broken = Arc::new(AtomicBool::new(false));
        let out = Guarded {
            inner: out,
            broken: broken.clone(),
        };
        let encoder = match format {
            Format::Table | Format::Markdown => Encoder::Text(
                Box::new(Text::new(
                    &schema,
                    format == Format::Markdown,
                    style.expanded,
                )),
                out,
            ),
            Format::Csv => Encoder::Csv(Box::new(
                datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            )),
            Format::Json => Encoder::Json(
                WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, JsonArray>(out),
            ),
            Format::Ndjson => Encoder::Ndjson(
                WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, LineDelimited>(out),
            ),
        };
        let (maxrows, digits) = match style.is_display() {
            true => (style.maxrows, style.digits),
            false => (None, None),
        };
        Self {
            schema,
            maxrows,
            digits,
            rows: 0,
            shown: 0,
            encoder,
            broken,
        }
    }

    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        self.encode(batch).map_err(|e| pipe_error(&self.broken, e))
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.schema.fields().is_empty() {
            return Ok(());
        }
        self.rows += batch.num_rows();
        let room = self
            .maxrows
            .map_or(usize::MAX, |m| m.saturating_sub(self.shown));
        let take = batch.num_rows().min(room);
        self.shown += take;
        match &mut self.encoder {
            Encoder::Text(text, out) => {
                if take > 0 {
                    text.push(out, format_rows(&batch.slice(0, take), self.digits)?)?;
                }
                // The rows are all shown: print the table so far rather than wait for the
                // rest to be counted.
                if self.maxrows == Some(self.shown) {
                    text.start(out)?;
                }
                out.flush()?;
            }
            Encoder::Csv(w) => w.write(batch)?,
            Encoder::Json(w) => w.write(batch)?,
            Encoder::Ndjson(w) => w.write(batch)?,
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Summary> {
        let broken = self.broken.clone();
        self.complete().map_err(|e| pipe_error(&broken, e))
    }

    fn complete(self) -> Result<Summary> {
        let has_columns = !self.schema.fields().is_empty();
        match self.encoder {
            Encoder::Text(mut text, mut out) => {
                if has_columns {
                    text.finish(&mut out)?;
                }
                out.flush()?;
            }
            Encoder::Csv(w) => {
                let mut out = w.into_inner();
                if has_columns && self.rows == 0 {
                    // arrow writes the header with the first batch; an empty result still
                    // gets its header so downstream tools see the columns.
                    let names: Vec<_> = self
                        .schema
                        .fields()
                        .iter()
                        .map(|f| csv_field(f.name()))
                        .collect();
                    writeln!(out, "{}", names.join(","))?;
                }
                out.flush()?;
            }
            Encoder::Json(mut w) => {
                if has_columns {
                    w.finish()?;
                    writeln!(w.get_mut())?;
                }
                w.into_inner().flush()?;
            }
            Encoder::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
        }
        Ok(Summary {
            rows: self.rows,
            shown: self.shown,
            has_columns,
        })
    }
}

/// Reports a closed pipe as the I/O error it is, whatever the encoder made of it.
fn pipe_error(broken: &AtomicBool, e: DataFusionError) -> DataFusionError {
    if broken.load(Ordering::Relaxed) {
        DataFusionError::IoError(io::ErrorKind::BrokenPipe.into())
    } else {
        e
    }
}

fn csv_field(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// Formats every cell of `batch` as display text, NULL as `NULL`, floats with `digits`
/// significant digits when given.
fn format_rows(batch: &RecordBatch, digits: Option<usize>) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            let floats = match (digits, c.data_type()) {
                (Some(d), DataType::Float64) => Some((cast_f64(c)?, d)),
                (Some(d), DataType::Float32) => Some((cast_f64(c)?, d.min(9))),
                _ => None,
            };
            Ok(match floats {
                Some((values, digits)) => Cell::Float(values, digits),
                None => Cell::Any(ArrayFormatter::try_new(c.as_ref(), &options)?),
            })
        })
        .collect::<std::result::Result<Vec<_>, ArrowError>>()?;
    Ok((0..batch.num_rows())
        .map(|row| columns.iter().map(|c| c.text(row)).collect())
        .collect())
}

fn cast_f64(array: &ArrayRef) -> std::result::Result<Float64Array, ArrowError> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

/// How the cells of one column become text.
enum Cell<'a> {
    Float(Float64Array, usize),
    Any(ArrayFormatter<'a>),
}

impl Cell<'_> {
    fn text(&self, row: usize) -> String {
        match self {
            Cell::Float(values, _) if values.is_null(row) => "NULL".to_string(),
            Cell::Float(values, digits) => round_float(values.value(row), *digits),
            Cell::Any(f) => f.value(row).to_string(),
        }
    }
}

/// `value` for people: every digit of its integer part and decimals up to about `digits`
/// significant digits, trailing zeros dropped; scientific notation for magnitudes below 1e-4
/// or from 1e15 on, where plain digits would hide the value.
pub fn round_float(value: f64, digits: usize) -> String {
    let digits = digits.max(1);
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_string()
        } else if value > 0.0 {
            "inf".to_string()
        } else {
            "-inf".to_string()
        };
    }
    if value == 0.0 {
        return "0.0".to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-4..15).contains(&magnitude) {
        let text = format!("{value:.*e}", digits - 1);
        return match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        };
    }
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

/// Drops trailing zeros after the decimal point, keeping one digit after it.
fn trim_zeros(text: &str) -> &str {
    if !text.contains('.') {
        return text;
    }
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        &text[..trimmed.len() + 1]
    } else {
        trimmed
    }
}

fn right_aligned(t: &DataType) -> bool {
    t.is_numeric()
        || matches!(
            t,
            DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Duration(_)
                | DataType::Interval(_)
        )
}

/// A table or markdown written as its rows come. A table's columns are as wide as their
/// widest cell among the first [`WIDTH_ROWS`] rows; a later, wider cell widens its own row
/// only. Markdown needs no widths and is written at once. An expanded table is written as
/// records, one `name | value` line per field.
struct Text {
    header: Vec<String>,
    right: Vec<bool>,
    markdown: bool,
    expanded: Expanded,
    /// Rows waiting for the widths.
    pending: Vec<Vec<String>>,
    /// The columns' widths once the table has started.
    widths: Option<Vec<usize>>,
    /// Records written so far, once the table has started as records.
    records: Option<usize>,
}

impl Text {
    fn new(schema: &Schema, markdown: bool, expanded: Expanded) -> Self {
        let fields = schema.fields();
        Self {
            header: fields.iter().map(|f| f.name().to_string()).collect(),
            right: fields
                .iter()
                .map(|f| right_aligned(f.data_type()))
                .collect(),
            markdown,
            expanded,
            pending: Vec::new(),
            widths: None,
            records: None,
        }
    }

    fn push(&mut self, out: &mut dyn Write, rows: Vec<Vec<String>>) -> io::Result<()> {
        if self.widths.is_some() || self.markdown {
            self.start(out)?;
            for row in &rows {
                self.row(out, row)?;
            }
            return Ok(());
        }
        self.pending.extend(rows);
        if self.pending.len() >= WIDTH_ROWS {
            self.start(out)?;
        }
        Ok(())
    }

    /// Fixes the widths and writes the header and the rows so far; nothing once started.
    fn start(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.widths.is_some() {
            return Ok(());
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in self.pending.iter().take(WIDTH_ROWS) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let table_width = widths.iter().map(|w| w + 3).sum::<usize>() + 1;
        let widths = self.widths.insert(widths);
        let expanded = match self.expanded {
            Expanded::Off => false,
            Expanded::On => true,
            Expanded::Wider(columns) => table_width > columns,
        };
        if expanded && !self.markdown {
            self.records = Some(0);
        } else if self.markdown {
            let header: Vec<_> = self.header.iter().map(|h| markdown_cell(h)).collect();
            writeln!(out, "| {} |", header.join(" | "))?;
            let rule: Vec<_> = self
                .right
                .iter()
                .map(|&r| if r { "---:" } else { "---" })
                .collect();
            writeln!(out, "|{}|", rule.join("|"))?;
        } else {
            let border = border(widths);
            writeln!(out, "{border}")?;
            write_cells(out, widths, &self.header, &self.right)?;
            writeln!(out, "{border}")?;
        }
        for row in std::mem::take(&mut self.pending) {
            self.row(out, &row)?;
        }
        Ok(())
    }

    fn row(&mut self, out: &mut dyn Write, row: &[String]) -> io::Result<()> {
        if let Some(n) = &mut self.records {
            *n += 1;
            return write_record(out, *n, &self.header, row);
        }
        if self.markdown {
            let cells: Vec<_> = row.iter().map(|c| markdown_cell(c)).collect();
            return writeln!(out, "| {} |", cells.join(" | "));
        }
        write_cells(out, self.widths.as_deref().unwrap_or(&[]), row, &self.right)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.start(out)?;
        if !self.markdown && self.records.is_none() {
            writeln!(out, "{}", border(self.widths.as_deref().unwrap_or(&[])))?;
        }
        Ok(())
    }
}

/// One row as a record: a `-[ RECORD n ]` rule, then `name | value` per field.
fn write_record(out: &mut dyn Write, n: usize, names: &[String], row: &[String]) -> io::Result<()> {
    let name_width = names.iter().map(|h| width(h)).max().unwrap_or(0);
    let title = format!("-[ RECORD {n} ]");
    let rule = "-".repeat((name_width + 1).saturating_sub(title.chars().count()));
    writeln!(out, "{title}{rule}+{}", "-".repeat(8))?;
    for (name, value) in names.iter().zip(row) {
        let pad = " ".repeat(name_width.saturating_sub(width(name)));
        let mut lines = value.lines();
        writeln!(out, "{name}{pad} | {}", lines.next().unwrap_or(""))?;
        for more in lines {
            writeln!(out, "{} | {more}", " ".repeat(name_width))?;
        }
    }
    Ok(())
}

fn width(text: &str) -> usize {
    text.lines().map(UnicodeWidthStr::width).max().unwrap_or(0)
}

fn border(widths: &[usize]) -> String {
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    format!("+{}+", dashes.join("+"))
}

/// One row of a table; a cell of several lines makes the row as many lines high.
fn write_cells(
    out: &mut dyn Write,
    widths: &[usize],
    cells: &[String],
    right: &[bool],
) -> io::Result<()> {
    let lines: Vec<Vec<&str>> = cells.iter().map(|c| c.lines().collect()).collect();
    let height = lines.iter().map(Vec::len).max().unwrap_or(0).max(1);
    for i in 0..height {
        let mut line = String::from("|");
        for ((cell, &w), &right) in lines.iter().zip(widths).zip(right) {
            let text = cell.get(i).copied().unwrap_or("");
            let pad = " ".repeat(w.saturating_sub(text.width()));
            if right {
                line += &format!(" {pad}{text} |");
            } else {
                line += &format!(" {text}{pad} |");
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn markdown_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

/// Whether `e` (or what caused it) is a write to a closed pipe: `cohort ... | head` ending
/// early is not an error.
pub fn is_broken_pipe(e: &DataFusionError) -> bool {
    let io = |e: &io::Error| e.kind() == io::ErrorKind::BrokenPipe;
    match e.find_root() {
        DataFusionError::IoError(e) => io(e),
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::IoError(_, e) => io(e),
            ArrowError::ExternalError(b) => b.downcast_ref::<io::Error>().is_some_and(io),
            _ => false,
        },
        DataFusionError::External(b) => b.downcast_ref::<io::Error>().is_some_and(io),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;

    use super::*;

    fn sample() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 22, 333])),
                Arc::new(StringArray::from(vec![Some("a|b"), None, Some("c,d")])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(-2.0), None])),
            ],
        )
        .unwrap();
        (schema, vec![batch])
    }

    fn render(format: Format, maxrows: Option<usize>) -> (String, Summary) {
        let (schema, batches) = sample();
        let mut out = Vec::new();
        let style = Style {
            maxrows,
            ..Style::new(format)
        };
        let summary = write_batches(&mut out, &style, schema, &batches).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn table_aligns_numbers_right_and_shows_null() {
        let (text, summary) = render(Format::Table, None);
        assert_eq!(
            text,
            "+-----+------+--------+\n\
             |  id | name | amount |\n\
             +-----+------+--------+\n\
             |   1 | a|b  |    1.5 |\n\
             |  22 | NULL |   -2.0 |\n\
             | 333 | c,d  |   NULL |\n\
             +-----+------+--------+\n"
        );
        assert_eq!(summary.footer(None), "3 rows");
    }

    #[test]
    fn maxrows_limits_table_and_counts_the_rest() {
        let (text, summary) = render(Format::Table, Some(1));
        assert_eq!(text.lines().count(), 5);
        assert_eq!((summary.rows, summary.shown), (3, 1));
        assert_eq!(
            summary.footer(Some(Duration::from_millis(1500))),
            "3 rows (1 shown, 2 left out; change with --maxrows or \\maxrows) in 1.500 s"
        );
    }

    #[test]
    fn data_formats() {
        assert_eq!(
            render(Format::Csv, Some(1)).0,
            "id,name,amount\n1,a|b,1.5\n22,,-2.0\n333,\"c,d\",\n"
        );
        assert_eq!(
            render(Format::Ndjson, None).0,
            "{\"id\":1,\"name\":\"a|b\",\"amount\":1.5}\n{\"id\":22,\"name\":null,\"amount\":-2.0}\n{\"id\":333,\"name\":\"c,d\",\"amount\":null}\n"
        );
        assert_eq!(
            render(Format::Json, None).0,
            "[{\"id\":1,\"name\":\"a|b\",\"amount\":1.5},{\"id\":22,\"name\":null,\"amount\":-2.0},{\"id\":333,\"name\":\"c,d\",\"amount\":null}]\n"
        );
        assert_eq!(
            render(Format::Markdown, None).0,
            "| id | name | amount |\n|---:|---|---:|\n| 1 | a\\|b | 1.5 |\n| 22 | NULL | -2.0 |\n| 333 | c,d | NULL |\n"
        );
    }

    #[test]
    fn empty_results_keep_their_columns() {
        let (schema, _) = sample();
        let mut out = Vec::new();
        write_batches(&mut out, &Style::new(Format::Csv), schema.clone(), &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "id,name,amount\n");
        let mut out = Vec::new();
        write_batches(&mut out, &Style::new(Format::Json), schema, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "[]\n");
    }

    #[test]
    fn floats_are_rounded_for_display_only() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        let values = vec![
            Some(0.23141361256544501),
            Some(1234567.891),
            Some(-2.0),
            Some(0.000012345678),
            Some(9.9999999),
            Some(3e20),
            None,
        ];
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from(values))])
                .unwrap();
        let render = |style: Style| {
            let mut out = Vec::new();
            write_batches(
                &mut out,
                &style,
                schema.clone(),
                std::slice::from_ref(&batch),
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            render(Style::new(Format::Markdown)),
            "| x |\n|---:|\n| 0.231414 |\n| 1234568 |\n| -2.0 |\n| 1.23457e-5 |\n| 10.0 |\n\
             | 3.0e20 |\n| NULL |\n"
        );
        let three = Style {
            digits: Some(3),
            ..Style::new(Format::Markdown)
        };
        assert!(render(three).contains("| 0.231 |\n| 1234568 |"));
        let full = Style {
            digits: None,
            ..Style::new(Format::Markdown)
        };
        assert!(render(full).contains("| 0.23141361256544501 |"));
        assert!(render(Style::new(Format::Csv)).starts_with("x\n0.23141361256544501\n"));
    }

    #[test]
    fn expanded_tables_are_records() {
        let on = Style {
            expanded: Expanded::On,
            ..Style::new(Format::Table)
        };
        let (schema, batches) = sample();
        let mut out = Vec::new();
        write_batches(&mut out, &on, schema.clone(), &batches[..]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("-[ RECORD 1 ]+--------\nid     | 1\nname   | a|b\namount | 1.5\n"),
            "{text}"
        );
        assert!(text.contains("-[ RECORD 3 ]"));
        // Automatic: records only when the table is wider than the terminal.
        for (columns, records) in [(80, false), (10, true)] {
            let auto = Style {
                expanded: Expanded::Wider(columns),
                ..Style::new(Format::Table)
            };
            let mut out = Vec::new();
            write_batches(&mut out, &auto, schema.clone(), &batches[..]).unwrap();
            assert_eq!(String::from_utf8(out).unwrap().contains("RECORD"), records);
        }
    }

    #[test]
    fn format_names_parse_case_insensitively() {
        assert_eq!("NDJSON".parse::<Format>(), Ok(Format::Ndjson));
        assert!("xml".parse::<Format>().unwrap_err().contains("table, csv"));
    }
}
