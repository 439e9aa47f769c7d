-- Revenue forecasts on the demo's daily revenue per region: one exponential smoothing
-- model per region, chosen by AICc, a year ahead by month and two weeks ahead by day, and
-- the method checked on the last three months it did not see.
-- Run it with:  cargo run -- --demo -f queries/forecast.sql

-- Monthly revenue per region (whole months only).
CREATE OR REPLACE VIEW monthly_revenue AS
SELECT CAST(date_trunc('month', date) AS DATE) AS month, region, sum(revenue) AS revenue
FROM daily_revenue
WHERE date < DATE '2026-07-01'
GROUP BY 1, 2;

CREATE OR REPLACE MODEL revenue_fc
  OPTIONS (model_type = 'forecast', time_col = 'month', value_col = 'revenue',
           id_col = 'region', horizon = 12) AS
SELECT month, region, revenue FROM monthly_revenue;

-- The next twelve months, with 95% prediction intervals.
SELECT id AS region, time AS month, round(forecast) AS forecast,
       round(lower) AS lower, round(upper) AS upper
FROM forecast('revenue_fc')
ORDER BY region, month;

-- The North region's year ahead as a picture: the forecast inside its 95% interval
-- (the README shows this chart).
SELECT time AS month, forecast, lower, upper
FROM forecast('revenue_fc')
WHERE id = 'North'
ORDER BY month;
\chart line month forecast > docs/forecast.svg

-- Next year's total by region.
SELECT id AS region, round(sum(forecast)) AS revenue_next_12_months
FROM forecast('revenue_fc', 12)
GROUP BY id ORDER BY revenue_next_12_months DESC;

-- Holdout: trained on the months before April 2026, scored on April to June 2026.
CREATE OR REPLACE MODEL revenue_fc_holdout
  OPTIONS (model_type = 'forecast', time_col = 'month', value_col = 'revenue',
           id_col = 'region') AS
SELECT month, region, revenue FROM monthly_revenue WHERE month < DATE '2026-04-01';

SELECT round(mape, 4) AS mape, round(smape, 4) AS smape, round(mase, 3) AS mase,
       rows, rows_skipped
FROM evaluate('revenue_fc_holdout',
              (SELECT month, region, revenue FROM monthly_revenue
               WHERE month >= DATE '2026-04-01'));

-- Daily: the weekly pattern, two weeks ahead for one region.
CREATE OR REPLACE MODEL daily_fc
  OPTIONS (model_type = 'forecast', time_col = 'date', value_col = 'revenue',
           id_col = 'region') AS
SELECT date, region, revenue FROM daily_revenue;

SELECT time AS day, to_char(time, '%A') AS weekday, round(forecast) AS forecast,
       round(lower) AS lower, round(upper) AS upper
FROM forecast('daily_fc', 14)
WHERE id = 'North'
ORDER BY day;
