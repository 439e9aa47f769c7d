-- Churn on the demo data: train and tune with a holdout, explain, rank, export the riskiest
-- and give each of the riskiest its reasons.
-- Run it with:  cargo run -- --demo -f queries/churn.sql
-- Writes riskiest_customers.csv in the current directory.

-- Train on 80% of customers and hold every fifth out for evaluation; try four L2 penalties,
-- judged by AUC on the held-out customers, and keep the best.
CREATE OR REPLACE MODEL churn
  OPTIONS (model_type = 'logistic_reg', label = 'churned',
           data_split_method = 'custom', data_split_col = 'held_out',
           l2_reg = [0, 1, 10, 100]) AS
SELECT churned, tenure_months, monthly_charges, support_calls, age, plan, channel, region,
       customer_id % 5 = 0 AS held_out
FROM customers;

-- The tuning trials: each penalty's metrics on the held-out customers.
SELECT trial, l2_reg, round(auc, 4) AS auc, round(log_loss, 4) AS log_loss, is_best
FROM trials('churn')
ORDER BY trial;

-- What drives churn: log-odds per unit of each feature, strongest first.
SELECT feature,
       round(weight, 4)  AS log_odds,
       round(std_err, 4) AS std_err,
       round(p_value, 4) AS p_value
FROM explain_model('churn')
ORDER BY importance DESC NULLS LAST;

-- The holdout: how well the model ranks and predicts customers it never saw, as CREATE
-- MODEL measured it.
SELECT rows, round(auc, 4) AS auc, round(log_loss, 4) AS log_loss,
       round(accuracy, 4) AS accuracy, round(precision, 4) AS precision,
       round(recall, 4) AS recall, round(f1, 4) AS f1
FROM EVALUATE('churn');

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

-- Why the ten riskiest customers are at risk: their three strongest reasons, each a feature
-- (or plan=..., a level) and how much it adds to the log-odds of the average customer,
-- ready to paste into a CRM export.
SELECT customer_id, round(prediction, 3) AS churn_probability,
       contributions[1]['feature'] AS reason_1, round(contributions[1]['contribution'], 3) AS impact_1,
       contributions[2]['feature'] AS reason_2, round(contributions[2]['contribution'], 3) AS impact_2,
       contributions[3]['feature'] AS reason_3, round(contributions[3]['contribution'], 3) AS impact_3
FROM explain_predict('churn', customers, top_k => 3)
ORDER BY prediction DESC, customer_id
LIMIT 10;
