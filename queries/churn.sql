-- Churn on the demo data: train, check on a holdout, explain, rank, and export the riskiest.
-- Run it with:  cargo run -- --demo -f queries/churn.sql
-- Writes riskiest_customers.csv in the current directory.

-- Train on 80% of customers; every fifth customer is held out.
CREATE OR REPLACE MODEL churn
  OPTIONS (model_type = 'logistic_reg', label = 'churned') AS
SELECT churned, tenure_months, monthly_charges, support_calls, age, plan, channel, region
FROM customers
WHERE customer_id % 5 <> 0;

-- What drives churn: log-odds per unit of each feature, strongest first.
SELECT feature,
       round(weight, 4)  AS log_odds,
       round(std_err, 4) AS std_err,
       round(p_value, 4) AS p_value
FROM explain_model('churn')
ORDER BY importance DESC NULLS LAST;

-- The holdout: how well the model ranks and predicts customers it never saw.
SELECT rows, round(auc, 4) AS auc, round(log_loss, 4) AS log_loss,
       round(accuracy, 4) AS accuracy, round(precision, 4) AS precision,
       round(recall, 4) AS recall, round(f1, 4) AS f1
FROM EVALUATE('churn', (SELECT * FROM customers WHERE customer_id % 5 = 0));

-- Lift by decile of predicted risk on the holdout: the riskiest tenth churns most.
SELECT decile, customers, positives AS churned, round(rate, 3) AS churn_rate,
       round(lift, 2) AS lift, round(cumulative_gain, 3) AS cumulative_gain
FROM LIFT('churn', (SELECT * FROM customers WHERE customer_id % 5 = 0), 10)
ORDER BY decile;
-- The same as a picture (the README shows it): lift falls and the cumulative gain rises
-- fastest in the riskiest deciles.
\chart line decile lift cumulative_gain > docs/lift.svg

-- Score every customer and keep the 1,000 most likely to leave.
COPY (
  SELECT customer_id, region, plan, round(probability, 4) AS churn_probability
  FROM PREDICT('churn', customers)
  ORDER BY churn_probability DESC, customer_id
  LIMIT 1000
) TO 'riskiest_customers.csv' STORED AS CSV;
