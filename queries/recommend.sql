-- Product recommendations on the demo orders: a matrix factorization of who bought what,
-- the top 10 for every customer, and products bought by the same customers.
-- Run it with:  cargo run -- --demo -f queries/recommend.sql

-- Implicit feedback: how often each customer bought each product.
CREATE OR REPLACE MODEL recs
  OPTIONS (model_type = 'matrix_factorization', feedback_type = 'implicit',
           num_factors = 16, alpha = 20) AS
SELECT customer_id, product_id, count(*) AS purchases
FROM orders
GROUP BY customer_id, product_id;

-- The top 10 for every demo customer (products they had left out); customers without
-- orders get the best sellers, marked source = 'popular'.
CREATE OR REPLACE VIEW top10 AS
SELECT * FROM recommend('recs', (SELECT customer_id FROM customers), 10);

SELECT source, count(DISTINCT "user") AS customers, count(*) AS recommendations
FROM top10 GROUP BY source ORDER BY source;

SELECT "user" AS customer_id, rank, item AS product_id, round(score, 3) AS score
FROM top10 WHERE "user" <= 3 ORDER BY customer_id, rank;

-- One customer as a list; a customer without orders gets the best sellers.
SELECT RECOMMEND('recs', 1, 5) AS for_customer_1,
       RECOMMEND('recs', -1, 5) AS for_a_new_customer;

-- Products like product 1, the best seller.
SELECT similar_item AS product_id, rank, round(score, 3) AS cosine
FROM similar_items('recs', 1, 5)
ORDER BY rank;
