"""Outsized arguments to cohort's table functions through the Python ADBC Flight SQL
driver: each one answers or fails with a message naming the argument, and the server keeps
serving. Run by tests/integration/flight.rs against a server started with
--session-memory-limit:

    python tests/python/adbc_sizes.py grpc://127.0.0.1:PORT USER PASSWORD
"""
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager

from adbc_attack import run


def fails(conn, sql, says):
    try:
        run(conn, sql)
    except adbc_driver_manager.Error as e:
        assert says in str(e), (sql, says, str(e))
        return
    sys.exit(f"accepted: {sql}")


def main():
    uri, user, password = sys.argv[1:4]
    with flight_sql.connect(uri, db_kwargs={"username": user, "password": password}) as conn:
        run(conn, "CREATE MODEL recs OPTIONS (model_type = 'matrix_factorization', "
                  "feedback_type = 'implicit', num_factors = 8, seed = 3) AS "
                  "SELECT customer_id, product_id, COUNT(*) AS n FROM orders GROUP BY 1, 2")
        run(conn, "CREATE MODEL fc OPTIONS (model_type = 'forecast', time_col = 'date', "
                  "value_col = 'revenue', id_col = 'region') AS "
                  "SELECT date, region, revenue FROM daily_revenue")
        items = run(conn, "SELECT count(DISTINCT product_id) FROM orders")[0][0]
        # k past the number of items gives them all.
        [(rows, users)] = run(conn, "SELECT count(*), count(DISTINCT \"user\") "
                                    "FROM recommend('recs', 1000000000)")
        assert 0 < rows <= users * items, (rows, users, items)
        for k in ["1000000000", "9223372036854775807"]:
            [(n,)] = run(conn, f"SELECT cardinality(RECOMMEND('recs', -1, {k}))")
            assert n == items, (k, n, items)
            [(n,)] = run(conn, f"SELECT count(*) FROM similar_items('recs', 1, {k})")
            assert 0 < n < items, (k, n, items)
        for horizon in ["1000000", "9223372036854775807"]:
            fails(conn, f"SELECT count(*) FROM forecast('fc', {horizon})",
                  f"forecast's horizon must be at most 100000, the longest forecast a model "
                  f"makes, got {horizon}; forecast fewer steps")
    # The server still answers, on a new connection.
    with flight_sql.connect(uri, db_kwargs={"username": user, "password": password}) as conn:
        assert run(conn, "SELECT count(*) FROM forecast('fc', 12)") == [(60,)]
        assert run(conn, "SELECT 1 + 1") == [(2,)]
    print("sizes ok")


if __name__ == "__main__":
    main()
