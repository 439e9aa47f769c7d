//! Charts of a result: drawn in the terminal with braille dots, or written as SVG or PNG.
//!
//! One plotters drawing serves every target; the terminal is a plotters backend of our own
//! whose pixels are the 2×4 dots of braille characters. The first column is X unless one is
//! named, the numeric columns are Y, and columns named `lower` and `upper` (a forecast's
//! interval) are drawn as a band rather than as lines.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{DataFusionError, Result};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use crate::output::round_float;

/// What kind of chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Line,
    Bar,
    Scatter,
}

/// `\chart [line|bar|scatter] [X] [Y...] [> FILE]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartSpec {
    /// Chosen from the X column when `None`: bars for text, lines otherwise.
    pub kind: Option<Kind>,
    pub x: Option<String>,
    pub y: Vec<String>,
    /// An .svg or .png file; the terminal when `None`.
    pub file: Option<PathBuf>,
}

impl ChartSpec {
    pub fn parse(arg: &str) -> std::result::Result<Self, String> {
        let (columns, file) = match arg.split_once('>') {
            Some((c, f)) => {
                let f = f.trim().trim_matches(|c| c == '\'' || c == '"');
                if f.is_empty() {
                    return Err("\\chart ... > needs a file name (.svg or .png)".to_string());
                }
                (c, Some(PathBuf::from(f)))
            }
            None => (arg, None),
        };
        let mut words = columns.split_whitespace().peekable();
        let kind = match words.peek().map(|w| w.to_ascii_lowercase()).as_deref() {
            Some("line") => Some(Kind::Line),
            Some("bar") => Some(Kind::Bar),
            Some("scatter") => Some(Kind::Scatter),
            _ => None,
        };
        if kind.is_some() {
            words.next();
        }
        Ok(Self {
            kind,
            x: words.next().map(str::to_string),
            y: words.map(str::to_string).collect(),
            file,
        })
    }
}

/// The columns of a result as a chart sees them.
struct Data {
    x_name: String,
    /// X of each row: the number, the date as days, or the category's index.
    x: Vec<f64>,
    /// Each row's X as text, for the axis labels of dates and categories.
    x_text: Option<Vec<String>>,
    series: Vec<(String, Vec<f64>)>,
    /// `lower` and `upper`.
    band: Option<(Vec<f64>, Vec<f64>)>,
}

impl Data {
    fn new(schema: &SchemaRef, batches: &[RecordBatch], spec: &ChartSpec) -> Result<Self> {
        let batch = concat_batches(schema, batches)?;
        let find = |name: &str| {
            schema
                .fields()
                .iter()
                .position(|f| f.name() == name || f.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    DataFusionError::Plan(format!(
                        "the last result has no column {name}; it has {}",
                        names.join(", ")
                    ))
                })
        };
        if schema.fields().is_empty() || batch.num_rows() == 0 {
            return Err(DataFusionError::Plan(
                "the last result has no rows to chart".to_string(),
            ));
        }
        let x_index = spec.x.as_deref().map(find).transpose()?.unwrap_or(0);
        let x_field = schema.field(x_index);
        let x_column = batch.column(x_index);
        let options = FormatOptions::default().with_null("NULL");
        let text = |column: &dyn Array| -> Result<Vec<String>> {
            let f = ArrayFormatter::try_new(column, &options)?;
            Ok((0..column.len()).map(|i| f.value(i).to_string()).collect())
        };
        let (x, x_text) = if x_field.data_type().is_numeric() {
            (numbers(x_column.as_ref())?, None)
        } else if x_field.data_type().is_temporal() {
            let as_days = cast(x_column, &DataType::Date32)
                .and_then(|d| cast(&d, &DataType::Int32))
                .or_else(|_| cast(x_column, &DataType::Int64))?;
            (numbers(as_days.as_ref())?, Some(text(x_column.as_ref())?))
        } else {
            let labels = text(x_column.as_ref())?;
            ((0..labels.len()).map(|i| i as f64).collect(), Some(labels))
        };
        let is_band =
            |name: &str| name.eq_ignore_ascii_case("lower") || name.eq_ignore_ascii_case("upper");
        let y_indices: Vec<usize> = if spec.y.is_empty() {
            (0..schema.fields().len())
                .filter(|&i| i != x_index && schema.field(i).data_type().is_numeric())
                .collect()
        } else {
            spec.y
                .iter()
                .map(|name| find(name))
                .collect::<Result<_>>()?
        };
        let mut series = Vec::new();
        for &i in &y_indices {
            let field = schema.field(i);
            if !field.data_type().is_numeric() {
                return Err(DataFusionError::Plan(format!(
                    "\\chart draws numbers; {} is {}",
                    field.name(),
                    field.data_type()
                )));
            }
            if !is_band(field.name()) {
                series.push((field.name().clone(), numbers(batch.column(i).as_ref())?));
            }
        }
        let band = match (find("lower"), find("upper")) {
            (Ok(l), Ok(u)) if schema.field(l).data_type().is_numeric() => Some((
                numbers(batch.column(l).as_ref())?,
                numbers(batch.column(u).as_ref())?,
            )),
            _ => None,
        };
        if series.is_empty() && band.is_none() {
            return Err(DataFusionError::Plan(format!(
                "the last result has no numeric column besides {} to chart; name the Y \
                 columns: \\chart {} COLUMN",
                x_field.name(),
                x_field.name()
            )));
        }
        Ok(Self {
            x_name: x_field.name().clone(),
            x,
            x_text,
            series,
            band,
        })
    }

    fn categorical(&self) -> bool {
        self.x_text.is_some() && self.x.windows(2).all(|w| w[1] == w[0] + 1.0)
    }

    fn x_range(&self, kind: Kind) -> (f64, f64) {
        let (lo, hi) = bounds(self.x.iter().copied());
        if kind == Kind::Bar {
            (lo - 0.5, hi + 0.5)
        } else if lo == hi {
            (lo - 1.0, hi + 1.0)
        } else {
            (lo, hi)
        }
    }

    fn y_range(&self, kind: Kind) -> (f64, f64) {
        let values = self.series.iter().flat_map(|(_, v)| v.iter().copied());
        let band = self
            .band
            .iter()
            .flat_map(|(l, u)| l.iter().chain(u.iter()).copied());
        let (mut lo, mut hi) = bounds(values.chain(band));
        if kind == Kind::Bar {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        if lo == hi {
            (lo - 1.0, hi + 1.0)
        } else {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        }
    }

    /// The label of an X tick: the nearest row's text for dates and categories.
    fn x_label(&self, x: f64) -> String {
        match &self.x_text {
            Some(text) => self
                .x
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs()))
                .map(|(i, _)| text[i].clone())
                .unwrap_or_default(),
            None => round_float(x, 4),
        }
    }
}

/// A numeric column as f64, NULL as NaN.
fn numbers(column: &dyn Array) -> Result<Vec<f64>> {
    let values = cast(
        &datafusion::arrow::array::make_array(column.to_data()),
        &DataType::Float64,
    )?;
    let values = values.as_primitive::<Float64Type>();
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                f64::NAN
            } else {
                values.value(i)
            }
        })
        .collect())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// Series colours, in order; the terminal shows each as the nearest ANSI colour.
const COLORS: [(RGBColor, u8); 6] = [
    (RGBColor(31, 119, 180), 34),
    (RGBColor(214, 39, 40), 31),
    (RGBColor(44, 160, 44), 32),
    (RGBColor(255, 127, 14), 33),
    (RGBColor(148, 103, 189), 35),
    (RGBColor(23, 190, 207), 36),
];

/// Sizes that differ between a terminal's dots and an image's pixels.
struct Look {
    font: u32,
    stroke: u32,
    margin: u32,
    x_labels: u32,
    y_labels: u32,
    point: u32,
    image: bool,
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    data: &Data,
    kind: Kind,
    look: &Look,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if look.image {
        root.fill(&WHITE)?;
    }
    let (x0, x1) = data.x_range(kind);
    let (y0, y1) = data.y_range(kind);
    let font = ("sans-serif", look.font).into_font();
    let mut chart = ChartBuilder::on(&root)
        .margin(look.margin)
        .x_label_area_size(look.x_labels)
        .y_label_area_size(look.y_labels)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let x_label = |x: &f64| data.x_label(*x);
    let y_label = |y: &f64| round_float(*y, 4);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(font.clone())
        .x_labels(if data.categorical() {
            data.x.len().min(12)
        } else {
            6
        })
        .y_labels(5);
    if look.image {
        mesh.x_desc(data.x_name.as_str())
            .axis_desc_style(font.clone())
            .light_line_style(RGBColor(235, 235, 235));
    } else {
        mesh.disable_mesh();
    }
    mesh.draw()?;
    if let Some((lower, upper)) = &data.band {
        let color = COLORS[0].0;
        let top = data.x.iter().zip(upper).map(|(&x, &y)| (x, y));
        let bottom = data.x.iter().zip(lower).rev().map(|(&x, &y)| (x, y));
        let points: Vec<_> = top
            .chain(bottom)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                points,
                color.mix(0.2).filled(),
            )))?
            .label("lower – upper")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 2), (x + 10, y + 2)], color.mix(0.2).filled())
            });
    }
    let count = data.series.len().max(1) as f64;
    for (n, (name, values)) in data.series.iter().enumerate() {
        let color = COLORS[n % COLORS.len()].0;
        let points: Vec<(f64, f64)> = data
            .x
            .iter()
            .zip(values)
            .map(|(&x, &y)| (x, y))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let drawn = match kind {
            Kind::Line => {
                chart.draw_series(LineSeries::new(points, color.stroke_width(look.stroke)))?
            }
            Kind::Scatter => chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, look.point, color.filled())),
            )?,
            Kind::Bar => {
                let width = 0.8 / count;
                chart.draw_series(points.into_iter().map(|(x, y)| {
                    let left = x - 0.4 + n as f64 * width;
                    Rectangle::new([(left, 0.0), (left + width * 0.9, y)], color.filled())
                }))?
            }
        };
        drawn
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 2), (x + 10, y + 2)], color.filled()));
    }
    let mut legend = chart.configure_series_labels();
    legend
        .label_font(font)
        .position(SeriesLabelPosition::UpperLeft);
    if look.image {
        legend
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200));
    } else {
        legend
            .background_style(TRANSPARENT)
            .border_style(TRANSPARENT);
    }
    legend.draw()?;
    root.present()?;
    Ok(())
}

/// The font every image's text is set in, bundled so charts need no system fonts.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");
        // The bundled font is known to parse; should it not, text is left out.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn failed(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("cannot draw the chart {what}: {e}"))
}

/// Draws `batches` into `path`, an .svg or .png file of 900 × 500 pixels, making its folder
/// when there is none.
pub fn to_file(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    spec: &ChartSpec,
    path: &Path,
) -> Result<()> {
    let data = Data::new(schema, batches, spec)?;
    let kind = spec.kind.unwrap_or(default_kind(&data));
    register_font();
    let look = Look {
        font: 16,
        stroke: 2,
        margin: 16,
        x_labels: 48,
        y_labels: 72,
        point: 3,
        image: true,
    };
    let size = (900, 500);
    let name = path.display().to_string();
    // A tour writing docs/forecast.svg from wherever it runs.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| failed(&name, e))?;
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("svg") => draw(
            SVGBackend::new(path, size).into_drawing_area(),
            &data,
            kind,
            &look,
        )
        .map_err(|e| failed(&name, e)),
        Some("png") => draw(
            BitMapBackend::new(path, size).into_drawing_area(),
            &data,
            kind,
            &look,
        )
        .map_err(|e| failed(&name, e)),
        _ => Err(DataFusionError::Plan(format!(
            "charts are written as .svg or .png files, not {name}"
        ))),
    }
}

/// Draws `batches` as `columns` × `rows` characters of braille; ANSI colours when `color`.
pub fn to_text(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    spec: &ChartSpec,
    (columns, rows): (usize, usize),
    color: bool,
) -> Result<String> {
    let data = Data::new(schema, batches, spec)?;
    let kind = spec.kind.unwrap_or(default_kind(&data));
    // Plotters lays labels out with the font's metrics, whatever the backend.
    register_font();
    let y_width = data
        .series
        .iter()
        .flat_map(|(_, v)| v.iter())
        .chain(data.band.iter().flat_map(|(l, u)| l.iter().chain(u)))
        .filter(|v| v.is_finite())
        .map(|v| round_float(*v, 4).chars().count())
        .max()
        .unwrap_or(4)
        .min(12);
    let look = Look {
        font: 4,
        stroke: 1,
        margin: 1,
        x_labels: 8,
        y_labels: 2 * (y_width as u32 + 2),
        point: 0,
        image: false,
    };
    let mut canvas = Braille::new(columns, rows);
    draw(canvas.area(), &data, kind, &look).map_err(|e| failed("in the terminal", e))?;
    Ok(canvas.render(color))
}

fn default_kind(data: &Data) -> Kind {
    if data.categorical() && data.x_text.is_some() && data.band.is_none() {
        let dates = data.x.len() > 1 && !data.x.windows(2).all(|w| w[1] == w[0] + 1.0);
        if dates { Kind::Line } else { Kind::Bar }
    } else {
        Kind::Line
    }
}

/// A plotters backend whose pixels are braille dots, 2 across and 4 down per character;
/// text takes whole characters.
struct Braille {
    columns: usize,
    rows: usize,
    dots: Vec<u8>,
    colors: Vec<Option<u8>>,
    text: Vec<Option<char>>,
}

impl Braille {
    fn new(columns: usize, rows: usize) -> Self {
        let cells = columns * rows;
        Self {
            columns,
            rows,
            dots: vec![0; cells],
            colors: vec![None; cells],
            text: vec![None; cells],
        }
    }

    fn area(&mut self) -> DrawingArea<&mut Self, plotters::coord::Shift> {
        DrawingArea::from(self)
    }

    fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for row in 0..self.rows {
            let mut line = String::new();
            let mut current = None;
            for column in 0..self.columns {
                let i = row * self.columns + column;
                let (c, paint) = match self.text[i] {
                    Some(c) => (c, None),
                    None if self.dots[i] != 0 => (
                        char::from_u32(0x2800 + u32::from(self.dots[i])).unwrap_or(' '),
                        self.colors[i],
                    ),
                    None => (' ', None),
                };
                if color && paint != current {
                    match paint {
                        Some(code) => {
                            let _ = write!(line, "\x1b[{code}m");
                        }
                        None => line.push_str("\x1b[0m"),
                    }
                    current = paint;
                }
                line.push(c);
            }
            if color && current.is_some() {
                line.push_str("\x1b[0m");
            }
            out += line.trim_end();
            out.push('\n');
        }
        out
    }
}

/// The ANSI colour code of a series colour; `None` for black (axes) and others.
fn ansi(color: BackendColor) -> Option<u8> {
    let (r, g, b) = color.rgb;
    COLORS
        .iter()
        .find(|(c, _)| (c.0, c.1, c.2) == (r, g, b))
        .map(|(_, code)| *code)
}

impl DrawingBackend for &mut Braille {
    type ErrorType = std::fmt::Error;

    fn get_size(&self) -> (u32, u32) {
        (2 * self.columns as u32, 4 * self.rows as u32)
    }

    fn ensure_prepared(&mut self) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn present(&mut self) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        (x, y): BackendCoord,
        color: BackendColor,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        if x < 0 || y < 0 || color.alpha < 0.05 {
            return Ok(());
        }
        // A light fill (a forecast's band) is a sparse stipple, so lines over it still read.
        if color.alpha < 0.5 && (x + 2 * y) % 5 != 0 {
            return Ok(());
        }
        let (x, y) = (x as usize, y as usize);
        let (column, row) = (x / 2, y / 4);
        if column >= self.columns || row >= self.rows {
            return Ok(());
        }
        const BITS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
        let i = row * self.columns + column;
        self.dots[i] |= BITS[x % 2][y % 4];
        if let Some(code) = ansi(color) {
            self.colors[i] = Some(code);
        } else if self.colors[i].is_none() {
            self.colors[i] = None;
        }
        Ok(())
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        (x, y): BackendCoord,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        let width = text.chars().count() as i32;
        let anchor = style.anchor();
        let column = x / 2
            - match anchor.h_pos {
                HPos::Left => 0,
                HPos::Center => width / 2,
                HPos::Right => width,
            };
        let row = match anchor.v_pos {
            VPos::Top => y / 4,
            VPos::Center => y / 4,
            VPos::Bottom => (y - 1) / 4,
        };
        if row < 0 || row as usize >= self.rows {
            return Ok(());
        }
        let start = column.max(0) as usize;
        let start = start.min(self.columns.saturating_sub(width as usize));
        for (k, c) in text.chars().enumerate() {
            let i = row as usize * self.columns + start + k;
            if start + k < self.columns {
                self.text[i] = Some(c);
            }
        }
        Ok(())
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        _: &TStyle,
    ) -> std::result::Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        Ok((2 * text.chars().count() as u32, 4))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn forecast() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("step", DataType::Int64, false),
            Field::new("forecast", DataType::Float64, false),
            Field::new("lower", DataType::Float64, false),
            Field::new("upper", DataType::Float64, false),
        ]));
        let f: Vec<f64> = (0..12).map(|i| 100.0 + 5.0 * i as f64).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(1..=12)),
                Arc::new(Float64Array::from(f.clone())),
                Arc::new(Float64Array::from_iter_values(f.iter().map(|v| v - 10.0))),
                Arc::new(Float64Array::from_iter_values(f.iter().map(|v| v + 10.0))),
            ],
        )
        .unwrap();
        (schema, vec![batch])
    }

    #[test]
    fn parses_kind_columns_and_file() {
        assert_eq!(ChartSpec::parse(""), Ok(ChartSpec::default()));
        assert_eq!(
            ChartSpec::parse("bar month revenue cost > 'out.svg'"),
            Ok(ChartSpec {
                kind: Some(Kind::Bar),
                x: Some("month".into()),
                y: vec!["revenue".into(), "cost".into()],
                file: Some("out.svg".into()),
            })
        );
        assert!(ChartSpec::parse("line >").is_err());
    }

    #[test]
    fn terminal_chart_fits_its_size_and_draws_the_band() {
        let (schema, batches) = forecast();
        let text = to_text(&schema, &batches, &ChartSpec::default(), (60, 16), false).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 16);
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{text}");
        assert!(text.contains("forecast"), "{text}");
        assert!(text.contains("lower – upper"), "{text}");
        assert!(text.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)));
    }

    #[test]
    fn images_are_written() {
        let (schema, batches) = forecast();
        let dir = tempfile::tempdir().unwrap();
        for name in ["f.svg", "f.png"] {
            let path = dir.path().join(name);
            to_file(&schema, &batches, &ChartSpec::default(), &path).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        }
        let svg = std::fs::read_to_string(dir.path().join("f.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("forecast"));
        let e = to_file(&schema, &batches, &ChartSpec::default(), Path::new("x.gif"));
        assert!(e.unwrap_err().to_string().contains(".svg or .png"));
        let named = ChartSpec {
            y: vec!["nope".into()],
            ..ChartSpec::default()
        };
        let e = to_text(&schema, &batches, &named, (40, 10), false).unwrap_err();
        assert!(
            e.to_string()
                .contains("no column nope; it has step, forecast")
        );
    }
}
