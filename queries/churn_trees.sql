-- Churn with boosted trees next to logistic regression on the same demo customers: the
-- holdout metrics and the lift by decile side by side, what drives the trees, and why the
-- riskiest customers are at risk. The demo's churn flag is drawn from a logistic model
-- (src/demo.rs), so here logistic regression is the right model and the trees come close;
-- on real tables with interactions and thresholds the trees are usually the stronger.
-- Run it with:  cargo run -- --demo -f queries/churn_trees.sql

-- Both models on the same 80% of customers; every fifth customer is held out.
CREATE OR REPLACE MODEL churn_lr
  OPTIONS (model_type = 'logistic_reg', label = 'churned') AS
SELECT churned, tenure_months, monthly_charges, support_calls, age, plan, channel, region
FROM customers
WHERE customer_id % 5 <> 0;

CREATE OR REPLACE MODEL churn_bt
  OPTIONS (model_type = 'boosted_tree_classifier', label = 'churned') AS
SELECT churned, tenure_months, monthly_charges, support_calls, age, plan, channel, region
FROM customers
WHERE customer_id % 5 <> 0;

-- The holdout: how well each model ranks and predicts customers it never saw.
SELECT 'logistic_reg' AS model, rows, round(auc, 4) AS auc, round(log_loss, 4) AS log_loss,
       round(accuracy, 4) AS accuracy
FROM EVALUATE('churn_lr', (SELECT * FROM customers WHERE customer_id % 5 = 0))
UNION ALL
SELECT 'boosted_tree_classifier', rows, round(auc, 4), round(log_loss, 4), round(accuracy, 4)
FROM EVALUATE('churn_bt', (SELECT * FROM customers WHERE customer_id % 5 = 0))
ORDER BY model;

-- Lift by decile of predicted risk on the holdout, one column per model.
SELECT lr.decile,
       lr.customers,
       lr.positives AS churned_lr, round(lr.lift, 2) AS lift_lr,
       bt.positives AS churned_bt, round(bt.lift, 2) AS lift_bt,
       round(lr.cumulative_gain, 3) AS gain_lr, round(bt.cumulative_gain, 3) AS gain_bt
FROM LIFT('churn_lr', (SELECT * FROM customers WHERE customer_id % 5 = 0), 10) AS lr
JOIN LIFT('churn_bt', (SELECT * FROM customers WHERE customer_id % 5 = 0), 10) AS bt
  ON lr.decile = bt.decile
ORDER BY lr.decile;

-- What the trees split on: each feature's share of the loss reduction, and how often.
SELECT feature, round(importance, 3) AS share_of_gain, splits
FROM explain_model('churn_bt')
ORDER BY importance DESC;

-- Why the five riskiest holdout customers are at risk: their three strongest reasons, in
-- log-odds added to the average customer's (they add up, over all features, to the row's
-- log-odds).
SELECT customer_id, round(prediction, 3) AS churn_probability,
       round(base_value, 3) AS average_log_odds, contributions AS top_reasons
FROM explain_predict('churn_bt', (SELECT * FROM customers WHERE customer_id % 5 = 0), top_k => 3)
ORDER BY prediction DESC, customer_id
LIMIT 5;
