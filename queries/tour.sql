-- A short tour of cohort's built-in demo data.
-- Run it with:  cargo run -- --demo -f queries/tour.sql
-- Each statement runs in order; the first error stops the tour with its line number.

-- The tables: customers, orders, products, interactions, daily_revenue.
SELECT table_name, table_type
FROM information_schema.tables
WHERE table_schema = 'public'
ORDER BY table_name;

-- Who the customers are, and how many churned, by plan.
SELECT plan,
       count(*)                                    AS customers,
       round(avg(monthly_charges), 2)              AS avg_monthly_charges,
       round(avg(tenure_months), 1)                AS avg_tenure_months,
       round(100.0 * avg(CAST(churned AS INT)), 1) AS churn_pct
FROM customers
GROUP BY plan
ORDER BY avg_monthly_charges;

-- Support calls go with churn: the generator's churn model says so, and the data agrees.
SELECT least(support_calls, 5)                      AS support_calls,
       count(*)                                     AS customers,
       round(100.0 * avg(CAST(churned AS INT)), 1)  AS churn_pct
FROM customers
GROUP BY 1
ORDER BY 1;

-- Recency, frequency and monetary value per customer: the raw material of segmentation.
CREATE VIEW customer_value AS
SELECT customer_id,
       DATE '2026-06-30' - max(order_date) AS recency_days,
       count(*)                            AS frequency,
       round(sum(amount), 2)               AS monetary
FROM orders
GROUP BY customer_id;

SELECT CASE WHEN recency_days <= 30  THEN '0-30 days'
            WHEN recency_days <= 180 THEN '31-180 days'
            ELSE 'over 180 days' END         AS last_order,
       count(*)                               AS customers,
       round(avg(frequency), 1)               AS avg_orders,
       round(avg(monetary), 2)                AS avg_spend
FROM customer_value
GROUP BY 1
ORDER BY 1;

-- Best-selling product categories over the last 90 days.
SELECT p.category,
       count(*)                 AS orders,
       round(sum(o.amount), 2)  AS revenue
FROM orders o JOIN products p USING (product_id)
WHERE o.order_date > DATE '2026-06-30' - INTERVAL '90 days'
GROUP BY p.category
ORDER BY revenue DESC
LIMIT 5;

-- Revenue by weekday: the weekly seasonality the forecasting models will pick up.
SELECT to_char(date, '%A')   AS weekday,
       round(avg(revenue))    AS avg_revenue
FROM daily_revenue
GROUP BY 1, extract(isodow FROM date)
ORDER BY extract(isodow FROM date);
