-- Customer segments on the demo orders: RFM scores and their named segments, then k-means
-- on the RFM features, what sets each segment apart, and how big each is.
-- Run it with:  cargo run -- --demo -f queries/segments.sql

-- Recency, frequency and monetary value per customer as of the day after the last order,
-- scored 1..5 in quintiles and named.
CREATE OR REPLACE VIEW customer_rfm AS
SELECT * FROM rfm(orders, customer_col => 'customer_id', time_col => 'order_date',
                  amount_col => 'amount', as_of => DATE '2026-07-01');

SELECT rfm_segment, count(*) AS customers, round(avg(monetary), 2) AS avg_monetary
FROM customer_rfm
GROUP BY rfm_segment
ORDER BY customers DESC;

-- k-means on the same features (log scale: spend and order counts are skewed).
CREATE OR REPLACE MODEL segments
  OPTIONS (model_type = 'kmeans', num_clusters = 4, n_init = 8) AS
SELECT ln(recency_days + 1) AS recency, ln(frequency) AS frequency, ln(monetary + 1) AS monetary
FROM customer_rfm;

-- Segment sizes and what sets each apart (means in the model's units, z from the population).
SELECT segment, size, round(share, 3) AS share,
       round(exp(recency) - 1, 1) AS typical_recency_days, round(recency_z, 2) AS recency_z,
       round(exp(frequency), 1) AS typical_orders, round(frequency_z, 2) AS frequency_z,
       round(exp(monetary) - 1, 2) AS typical_spend, round(monetary_z, 2) AS monetary_z
FROM segment_profile('segments')
ORDER BY segment;

-- How well separated the segments are.
SELECT inertia, davies_bouldin, silhouette
FROM evaluate('segments', (SELECT ln(recency_days + 1) AS recency, ln(frequency) AS frequency,
                                  ln(monetary + 1) AS monetary FROM customer_rfm));

-- The k-means segments against the named RFM segments.
SELECT segment('segments', ln(recency_days + 1), ln(frequency), ln(monetary + 1)) AS segment,
       rfm_segment, count(*) AS customers
FROM customer_rfm
GROUP BY 1, 2
ORDER BY 1, 3 DESC;

-- Segments trained per region on the fly.
SELECT region, regional_segment, count(*) AS customers
FROM (
  SELECT c.region,
         segment(3, ln(r.recency_days + 1), ln(r.frequency), ln(r.monetary + 1))
           OVER (PARTITION BY c.region) AS regional_segment
  FROM customer_rfm r JOIN customers c USING (customer_id)
)
GROUP BY 1, 2
ORDER BY 1, 2;
