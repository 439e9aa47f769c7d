-- Customer value on the demo orders: who is still a customer, how much they will buy and
-- what they are worth over the next year (BG/NBD for purchases, Gamma-Gamma for spend).
-- Run it with:  cargo run -- --demo -f queries/value.sql

-- Calibrate on the orders to the end of March 2026; April to June is the holdout. Demo
-- customers rarely drop out between purchases, so without a small penalizer the dropout
-- parameters a and b run off to infinity together (CREATE MODEL warns of it).
CREATE OR REPLACE MODEL value
  OPTIONS (model_type = 'customer_value', customer_col = 'customer_id',
           time_col = 'order_date', amount_col = 'amount',
           calibration_end = DATE '2026-03-31', time_unit = 'week',
           penalizer = 0.001) AS
SELECT customer_id, order_date, amount FROM orders;

-- The population's parameters: purchase rate (r, alpha), dropout (a, b), spend (p, q, gamma).
SELECT parameter, round(value, 4) AS value, round(std_err, 4) AS std_err
FROM explain_model('value');

-- The churn model of churn.sql, trained here too when this script runs on its own.
CREATE MODEL IF NOT EXISTS churn
  OPTIONS (model_type = 'logistic_reg', label = 'churned') AS
SELECT churned, tenure_months, monthly_charges, support_calls, age, plan, channel, region
FROM customers
WHERE customer_id % 5 <> 0;

-- The 20 most valuable customers over the next 52 weeks (1% discount a week), how likely
-- they are still buying, and the churn model's risk for the same customers.
SELECT v.customer_id, v.frequency, round(v.recency, 1) AS recency_weeks,
       round(v.tenure, 1) AS tenure_weeks, round(v.p_alive, 3) AS p_alive,
       round(v.expected_purchases, 2) AS expected_purchases,
       round(v.expected_spend, 2) AS expected_spend, round(v.clv, 2) AS clv,
       round(PREDICT_CHURN('churn', c.tenure_months, c.monthly_charges, c.support_calls,
                           c.age, c.plan, c.channel, c.region), 3) AS churn_risk
FROM customer_value('value', horizon => 52, discount_rate => 0.01) v
JOIN customers c ON c.customer_id = v.customer_id
ORDER BY clv DESC, customer_id
LIMIT 20;

-- How the holdout went: purchases April to June 2026, actual against expected.
SELECT customers, holdout_actual, round(holdout_predicted, 1) AS holdout_predicted,
       round(mae, 3) AS mae, round(rmse, 3) AS rmse
FROM evaluate('value', orders);

-- The calibration check: mean holdout purchases by calibration frequency, actual and expected.
SELECT frequency, customers, round(actual, 3) AS actual, round(predicted, 3) AS predicted
FROM calibration('value', orders)
ORDER BY frequency;
