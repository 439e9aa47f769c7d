//! The built-in synthetic marketing dataset (`cohort --demo`).
//!
//! Everything is generated in-process from a seed, so every run, on any thread count, gives
//! the same rows. The ground truth that models should recover is documented here as
//! constants and functions, so tests can check what a model learned against what was planted:
//!
//! - `customers.churned` is drawn from the logistic model in [`churn`]: `P(churned) =
//!   sigmoid(logit)` with the coefficients given there.
//! - every customer belongs to one hidden behavioural [`Segment`] ([`planted_segment`]),
//!   which sets how often and how much they order, and whether they stopped ordering;
//! - `interactions.rating` comes from latent factors ([`user_factors`], [`item_factors`]):
//!   `rating = clamp(round(3 + 1.5 · u·v + ε), 1, 5)`, `ε ~ N(0, 0.5²)`;
//! - `daily_revenue` is level + trend + weekly + yearly seasonality + noise, see [`revenue`].

use chrono::Datelike;
use std::sync::Arc;

use cohort_udfs::kernels::rng::Rng;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rayon::prelude::*;

/// Customers at scale 1; `--demo-scale N` multiplies it.
pub const CUSTOMERS_PER_SCALE: f64 = 10_000.0;
/// The default seed.
pub const DEFAULT_SEED: u64 = 42;
/// The demo's "today": tenure, recency and the revenue series end here (2026-06-30).
pub const AS_OF: i32 = 20_634;
/// Number of products, whatever the scale.
pub const PRODUCTS: usize = 500;
/// Customers generated per parallel block; also the rows per record batch.
const BLOCK: usize = 8_192;

pub const REGIONS: [&str; 5] = ["North", "South", "East", "West", "Central"];
const REGION_WEIGHTS: [f64; 5] = [0.25, 0.20, 0.20, 0.25, 0.10];
pub const PLANS: [&str; 3] = ["basic", "standard", "premium"];
const PLAN_WEIGHTS: [f64; 3] = [0.50, 0.35, 0.15];
/// Mean monthly charge of each plan; charges are this plus N(0, 8²), at least 10.
pub const PLAN_CHARGE: [f64; 3] = [29.0, 59.0, 99.0];
pub const CHANNELS: [&str; 4] = ["web", "mobile", "store", "partner"];
const CHANNEL_WEIGHTS: [f64; 4] = [0.45, 0.30, 0.15, 0.10];
pub const CATEGORIES: [&str; 8] = [
    "Books",
    "Music",
    "Video",
    "Games",
    "Electronics",
    "Home",
    "Garden",
    "Toys",
];

/// The churn model: `logit = INTERCEPT + TENURE_MONTHS·tenure_months + MONTHLY_CHARGES·
/// monthly_charges + SUPPORT_CALLS·support_calls + AGE·age + PLAN[plan] + CHANNEL[channel]`.
/// Region has no effect. `basic` and `web` are the reference levels (0).
pub mod churn {
    pub const INTERCEPT: f64 = -0.2;
    pub const TENURE_MONTHS: f64 = -0.045;
    pub const MONTHLY_CHARGES: f64 = 0.015;
    pub const SUPPORT_CALLS: f64 = 0.40;
    pub const AGE: f64 = -0.012;
    /// By plan, in the order of [`super::PLANS`].
    pub const PLAN: [f64; 3] = [0.0, -0.3, -0.6];
    /// By channel, in the order of [`super::CHANNELS`].
    pub const CHANNEL: [f64; 4] = [0.0, 0.25, -0.4, 0.15];
}

/// The hidden behavioural segments behind `orders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// 10%: about 2 orders a month, large baskets, active until today.
    Champion,
    /// 25%: about 0.8 orders a month, active until today.
    Loyal,
    /// 20%: about 1 order a month, but stopped 180–360 days before [`AS_OF`].
    AtRisk,
    /// 45%: about 0.15 orders a month, small baskets.
    Occasional,
}

impl Segment {
    pub const ALL: [Segment; 4] = [
        Segment::Champion,
        Segment::Loyal,
        Segment::AtRisk,
        Segment::Occasional,
    ];
    /// Share of customers in each segment, in the order of [`Segment::ALL`].
    pub const SHARES: [f64; 4] = [0.10, 0.25, 0.20, 0.45];

    /// Mean orders per month while active.
    pub fn orders_per_month(self) -> f64 {
        match self {
            Segment::Champion => 2.0,
            Segment::Loyal => 0.8,
            Segment::AtRisk => 1.0,
            Segment::Occasional => 0.15,
        }
    }

    /// Mean extra units per order (quantity = 1 + Poisson(this)); amount = price × quantity.
    pub fn extra_units(self) -> f64 {
        match self {
            Segment::Champion => 1.5,
            Segment::Loyal | Segment::AtRisk => 0.7,
            Segment::Occasional => 0.2,
        }
    }
}

/// Orders span at most this many days before [`AS_OF`] (two years).
pub const ORDER_WINDOW_DAYS: i32 = 730;
/// Number of latent factors behind ratings.
pub const FACTORS: usize = 4;
/// Standard deviation of each latent factor.
pub const FACTOR_SD: f64 = 0.6;

/// The segment planted for `customer_id`.
pub fn planted_segment(seed: u64, customer_id: i64) -> Segment {
    let u = Rng::keyed(seed, 1, customer_id as u64).uniform();
    Segment::ALL[pick(&Segment::SHARES, u)]
}

/// The latent taste vector of a customer.
pub fn user_factors(seed: u64, customer_id: i64) -> [f64; FACTORS] {
    let mut rng = Rng::keyed(seed, 2, customer_id as u64);
    std::array::from_fn(|_| FACTOR_SD * rng.normal())
}

/// The latent attribute vector of a product.
pub fn item_factors(seed: u64, product_id: i64) -> [f64; FACTORS] {
    let mut rng = Rng::keyed(seed, 3, product_id as u64);
    std::array::from_fn(|_| FACTOR_SD * rng.normal())
}

/// The revenue series: `revenue = LEVEL[r]·(1 + DAILY_GROWTH·t + WEEKLY[dow] + YEARLY_AMPLITUDE
/// ·cos(2π(day_of_year − YEARLY_PEAK_DAY)/365.25)) + N(0, (NOISE·LEVEL[r])²)`, where `t` is
/// days since [`revenue::START`] and `dow` is 0 for Monday.
pub mod revenue {
    /// 2024-01-01.
    pub const START: i32 = 19_723;
    /// By region, in the order of [`super::REGIONS`].
    pub const LEVEL: [f64; 5] = [12_000.0, 9_000.0, 10_000.0, 14_000.0, 5_000.0];
    pub const DAILY_GROWTH: f64 = 0.0004;
    /// Monday..Sunday, as a fraction of the level; sums to zero.
    pub const WEEKLY: [f64; 7] = [-0.05, -0.03, -0.02, 0.0, 0.04, 0.09, -0.03];
    pub const YEARLY_AMPLITUDE: f64 = 0.12;
    /// Day of the year (1-based) with the highest revenue: mid-December.
    pub const YEARLY_PEAK_DAY: f64 = 350.0;
    pub const NOISE: f64 = 0.03;

    /// The noise-free revenue of `region` (index into REGIONS) on `date` (days since epoch).
    pub fn expected(region: usize, date: i32) -> f64 {
        let t = f64::from(date - START);
        // 1970-01-01 was a Thursday.
        let dow = (date + 3).rem_euclid(7) as usize;
        let doy = f64::from(super::day_of_year(date));
        let yearly = (2.0 * std::f64::consts::PI * (doy - YEARLY_PEAK_DAY) / 365.25).cos();
        LEVEL[region] * (1.0 + DAILY_GROWTH * t + WEEKLY[dow] + YEARLY_AMPLITUDE * yearly)
    }
}

/// The generated tables.
pub struct Dataset {
    pub customers: Table,
    pub orders: Table,
    pub products: Table,
    pub interactions: Table,
    pub daily_revenue: Table,
}

/// One generated table.
pub struct Table {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl Dataset {
    /// Generates the dataset at `scale` (customers = 10,000 × scale) from `seed`.
    pub fn generate(scale: f64, seed: u64) -> Result<Self> {
        let customers = ((CUSTOMERS_PER_SCALE * scale).round() as usize).max(1);
        let products = Products::generate(seed);
        let blocks: Vec<Block> = (0..customers.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let first = b * BLOCK;
                Block::generate(
                    seed,
                    b as u64,
                    first + 1..=(first + BLOCK).min(customers),
                    &products,
                )
            })
            .collect();
        let mut next_order_id = 1;
        let mut customers_t = Vec::with_capacity(blocks.len());
        let mut orders_t = Vec::with_capacity(blocks.len());
        let mut interactions_t = Vec::with_capacity(blocks.len());
        for block in blocks {
            customers_t.push(block.customers);
            orders_t.push(block.orders.finish(next_order_id)?);
            next_order_id += orders_t.last().map_or(0, |b| b.num_rows() as i64);
            interactions_t.push(block.interactions);
        }
        Ok(Self {
            customers: Table {
                schema: customers_schema(),
                batches: customers_t.into_iter().collect::<Result<_>>()?,
            },
            orders: Table {
                schema: orders_schema(),
                batches: orders_t,
            },
            products: products.table()?,
            interactions: Table {
                schema: interactions_schema(),
                batches: interactions_t.into_iter().collect::<Result<_>>()?,
            },
            daily_revenue: daily_revenue(seed)?,
        })
    }

    /// Registers every table in `ctx` (replacing tables of the same names), each split into
    /// the session's target partitions so scans run in parallel.
    pub fn register(self, ctx: &SessionContext) -> Result<Vec<(&'static str, usize)>> {
        let partitions = ctx.copied_config().target_partitions().max(1);
        let mut registered = Vec::new();
        for (name, table) in [
            ("customers", self.customers),
            ("orders", self.orders),
            ("products", self.products),
            ("interactions", self.interactions),
            ("daily_revenue", self.daily_revenue),
        ] {
            let rows = table.num_rows();
            let mut parts = vec![Vec::new(); partitions];
            for (i, batch) in table.batches.into_iter().enumerate() {
                parts[i % partitions].push(batch);
            }
            let provider = MemTable::try_new(table.schema, parts)?;
            ctx.deregister_table(name)?;
            ctx.register_table(name, Arc::new(provider))?;
            registered.push((name, rows));
        }
        Ok(registered)
    }
}

fn customers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("signup_date", DataType::Date32, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("age", DataType::Int64, false),
        Field::new("tenure_months", DataType::Int64, false),
        Field::new("monthly_charges", DataType::Float64, false),
        Field::new("support_calls", DataType::Int64, false),
        Field::new("churned", DataType::Boolean, false),
    ]))
}

fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("order_date", DataType::Date32, false),
        Field::new("product_id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
    ]))
}

fn interactions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("product_id", DataType::Int64, false),
        Field::new("rating", DataType::Int64, false),
    ]))
}

/// Product prices and a popularity distribution (Zipf, s = 1) for picking products.
struct Products {
    price: Vec<f64>,
    category: Vec<usize>,
    popularity_cdf: Vec<f64>,
}

impl Products {
    fn generate(seed: u64) -> Self {
        let mut rng = Rng::keyed(seed, 4, 0);
        let price = (0..PRODUCTS)
            .map(|_| round2(2.0 + (20f64.ln() + 0.6 * rng.normal()).exp()))
            .collect();
        let category = (0..PRODUCTS)
            .map(|_| rng.below(CATEGORIES.len() as u64) as usize)
            .collect();
        let weights: Vec<f64> = (1..=PRODUCTS).map(|r| 1.0 / r as f64).collect();
        let total: f64 = weights.iter().sum();
        let popularity_cdf = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect();
        Self {
            price,
            category,
            popularity_cdf,
        }
    }

    /// A product index drawn by popularity.
    fn draw(&self, rng: &mut Rng) -> usize {
        let u = rng.uniform();
        self.popularity_cdf
            .partition_point(|&c| c < u)
            .min(PRODUCTS - 1)
    }

    fn table(&self) -> Result<Table> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("product_id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("category", DataType::Utf8, false),
            Field::new("price", DataType::Float64, false),
        ]));
        let ids: Vec<i64> = (1..=PRODUCTS as i64).collect();
        let names: Vec<String> = ids
            .iter()
            .zip(&self.category)
            .map(|(id, &c)| format!("{} #{id}", CATEGORIES[c]))
            .collect();
        let categories: Vec<&str> = self.category.iter().map(|&c| CATEGORIES[c]).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::from(categories)),
                Arc::new(Float64Array::from(self.price.clone())),
            ],
        )?;
        Ok(Table {
            schema,
            batches: vec![batch],
        })
    }
}

/// Orders of one block, before their global ids are known.
#[derive(Default)]
struct OrderColumns {
    customer_id: Vec<i64>,
    order_date: Vec<i32>,
    product_id: Vec<i64>,
    amount: Vec<f64>,
}

impl OrderColumns {
    fn finish(self, first_id: i64) -> Result<RecordBatch> {
        let n = self.customer_id.len() as i64;
        Ok(RecordBatch::try_new(
            orders_schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(first_id..first_id + n)),
                Arc::new(Int64Array::from(self.customer_id)),
                Arc::new(Date32Array::from(self.order_date)),
                Arc::new(Int64Array::from(self.product_id)),
                Arc::new(Float64Array::from(self.amount)),
            ],
        )?)
    }
}

/// The rows generated for one block of customers.
struct Block {
    customers: Result<RecordBatch>,
    orders: OrderColumns,
    interactions: Result<RecordBatch>,
}

impl Block {
    fn generate(
        seed: u64,
        block: u64,
        ids: std::ops::RangeInclusive<usize>,
        products: &Products,
    ) -> Self {
        let mut rng = Rng::keyed(seed, 5, block);
        let n = ids.clone().count();
        let mut c_id = Vec::with_capacity(n);
        let mut c_signup = Vec::with_capacity(n);
        let mut c_region = Vec::with_capacity(n);
        let mut c_plan = Vec::with_capacity(n);
        let mut c_channel = Vec::with_capacity(n);
        let mut c_age = Vec::with_capacity(n);
        let mut c_tenure = Vec::with_capacity(n);
        let mut c_charges = Vec::with_capacity(n);
        let mut c_calls = Vec::with_capacity(n);
        let mut c_churned = Vec::with_capacity(n);
        let mut orders = OrderColumns::default();
        let (mut i_user, mut i_item, mut i_rating) = (Vec::new(), Vec::new(), Vec::new());

        for id in ids {
            let id = id as i64;
            let region = pick(&REGION_WEIGHTS, rng.uniform());
            let plan = pick(&PLAN_WEIGHTS, rng.uniform());
            let channel = pick(&CHANNEL_WEIGHTS, rng.uniform());
            let age = (42.0 + 13.0 * rng.normal()).round().clamp(18.0, 85.0) as i64;
            let tenure = rng.below(73) as i64;
            let signup = AS_OF - (tenure as f64 * 30.44).round() as i32 - rng.below(30) as i32;
            let charges = round2((PLAN_CHARGE[plan] + 8.0 * rng.normal()).max(10.0));
            let calls = rng.poisson(1.5) as i64;
            let logit = churn::INTERCEPT
                + churn::TENURE_MONTHS * tenure as f64
                + churn::MONTHLY_CHARGES * charges
                + churn::SUPPORT_CALLS * calls as f64
                + churn::AGE * age as f64
                + churn::PLAN[plan]
                + churn::CHANNEL[channel];
            let churned = rng.uniform() < 1.0 / (1.0 + (-logit).exp());

            c_id.push(id);
            c_signup.push(signup);
            c_region.push(REGIONS[region]);
            c_plan.push(PLANS[plan]);
            c_channel.push(CHANNELS[channel]);
            c_age.push(age);
            c_tenure.push(tenure);
            c_charges.push(charges);
            c_calls.push(calls);
            c_churned.push(churned);

            // Orders: a Poisson number over the customer's active window, sorted by date.
            let segment = planted_segment(seed, id);
            let start = signup.max(AS_OF - ORDER_WINDOW_DAYS);
            let end = match segment {
                Segment::AtRisk => AS_OF - 180 - rng.below(181) as i32,
                _ => AS_OF,
            };
            if end > start {
                let months = f64::from(end - start) / 30.44;
                let count = rng.poisson(segment.orders_per_month() * months);
                let first = orders.order_date.len();
                for _ in 0..count {
                    let product = products.draw(&mut rng);
                    let quantity = 1 + rng.poisson(segment.extra_units());
                    orders.customer_id.push(id);
                    orders
                        .order_date
                        .push(start + rng.below((end - start) as u64 + 1) as i32);
                    orders.product_id.push(product as i64 + 1);
                    orders
                        .amount
                        .push(round2(products.price[product] * quantity as f64));
                }
                sort_orders_by_date(&mut orders, first);
            }

            // Ratings of distinct products, drawn by popularity, from the latent factors.
            let u = user_factors(seed, id);
            let wanted = 1 + rng.poisson(4.0) as usize;
            let mut rated: Vec<usize> = Vec::with_capacity(wanted);
            let mut tries = 0;
            while rated.len() < wanted && tries < 8 * wanted {
                tries += 1;
                let p = products.draw(&mut rng);
                if !rated.contains(&p) {
                    rated.push(p);
                }
            }
            for p in rated {
                let v = item_factors(seed, p as i64 + 1);
                let affinity: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                let rating = (3.0 + 1.5 * affinity + 0.5 * rng.normal())
                    .round()
                    .clamp(1.0, 5.0);
                i_user.push(id);
                i_item.push(p as i64 + 1);
                i_rating.push(rating as i64);
            }
        }

        let customers = RecordBatch::try_new(
            customers_schema(),
            vec![
                Arc::new(Int64Array::from(c_id)) as ArrayRef,
                Arc::new(Date32Array::from(c_signup)),
                Arc::new(StringArray::from(c_region)),
                Arc::new(StringArray::from(c_plan)),
                Arc::new(StringArray::from(c_channel)),
                Arc::new(Int64Array::from(c_age)),
                Arc::new(Int64Array::from(c_tenure)),
                Arc::new(Float64Array::from(c_charges)),
                Arc::new(Int64Array::from(c_calls)),
                Arc::new(BooleanArray::from(c_churned)),
            ],
        )
        .map_err(Into::into);
        let interactions = RecordBatch::try_new(
            interactions_schema(),
            vec![
                Arc::new(Int64Array::from(i_user)) as ArrayRef,
                Arc::new(Int64Array::from(i_item)),
                Arc::new(Int64Array::from(i_rating)),
            ],
        )
        .map_err(Into::into);
        Self {
            customers,
            orders,
            interactions,
        }
    }
}

/// Sorts the orders from index `first` on (one customer's) by date.
fn sort_orders_by_date(orders: &mut OrderColumns, first: usize) {
    let mut idx: Vec<usize> = (first..orders.order_date.len()).collect();
    idx.sort_by_key(|&i| orders.order_date[i]);
    let dates: Vec<i32> = idx.iter().map(|&i| orders.order_date[i]).collect();
    let products: Vec<i64> = idx.iter().map(|&i| orders.product_id[i]).collect();
    let amounts: Vec<f64> = idx.iter().map(|&i| orders.amount[i]).collect();
    orders.order_date[first..].copy_from_slice(&dates);
    orders.product_id[first..].copy_from_slice(&products);
    orders.amount[first..].copy_from_slice(&amounts);
}

fn daily_revenue(seed: u64) -> Result<Table> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("revenue", DataType::Float64, false),
    ]));
    let mut rng = Rng::keyed(seed, 6, 0);
    let (mut dates, mut regions, mut revenue) = (Vec::new(), Vec::new(), Vec::new());
    for date in revenue::START..=AS_OF {
        for (r, name) in REGIONS.iter().enumerate() {
            let noise = revenue::NOISE * revenue::LEVEL[r] * rng.normal();
            dates.push(date);
            regions.push(*name);
            revenue.push(round2(revenue::expected(r, date) + noise));
        }
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Date32Array::from(dates)),
            Arc::new(StringArray::from(regions)),
            Arc::new(Float64Array::from(revenue)),
        ],
    )?;
    Ok(Table {
        schema,
        batches: vec![batch],
    })
}

/// 1-based day of the year of a date given as days since 1970-01-01.
fn day_of_year(date: i32) -> i32 {
    // The demo's dates are a few years around today, always in chrono's range.
    chrono::NaiveDate::from_epoch_days(date).map_or(1, |d| d.ordinal() as i32)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Index of the weight bucket that `u` in [0, 1) falls into.
fn pick(weights: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            return i;
        }
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_year_matches_the_calendar() {
        assert_eq!(day_of_year(0), 1); // 1970-01-01
        assert_eq!(day_of_year(revenue::START), 1); // 2024-01-01
        assert_eq!(day_of_year(revenue::START + 59), 60); // 2024-02-29
        assert_eq!(day_of_year(revenue::START + 365), 366); // 2024-12-31
        assert_eq!(day_of_year(AS_OF), 181); // 2026-06-30
    }

    #[test]
    fn generation_is_deterministic_and_independent_of_threads() {
        let a = Dataset::generate(2.0, 7).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| Dataset::generate(2.0, 7).unwrap());
        for (x, y) in [
            (&a.customers, &b.customers),
            (&a.orders, &b.orders),
            (&a.interactions, &b.interactions),
            (&a.daily_revenue, &b.daily_revenue),
        ] {
            assert_eq!(x.batches, y.batches);
        }
        assert_eq!(a.customers.num_rows(), 20_000);
        let c = Dataset::generate(2.0, 8).unwrap();
        assert_ne!(a.customers.batches, c.customers.batches);
    }

    #[test]
    fn planted_segments_have_their_shares() {
        let n = 100_000;
        let mut counts = [0usize; 4];
        for id in 1..=n {
            let s = planted_segment(DEFAULT_SEED, id);
            counts[Segment::ALL.iter().position(|&x| x == s).unwrap()] += 1;
        }
        for (count, share) in counts.iter().zip(Segment::SHARES) {
            assert!(
                (*count as f64 / n as f64 - share).abs() < 0.01,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn rng_distributions_have_the_right_moments() {
        let mut rng = Rng::keyed(1, 0, 0);
        let n = 200_000;
        let normals: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        let poisson = (0..n).map(|_| rng.poisson(3.5) as f64).sum::<f64>() / n as f64;
        assert!((poisson - 3.5).abs() < 0.03, "{poisson}");
    }
}
