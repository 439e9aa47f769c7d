"""cohort serve through the real Python ADBC Flight SQL driver, as a notebook or BI tool
would use it. Run by tests/integration/flight.rs with the server's address and password:

    python tests/python/adbc_client.py grpc://127.0.0.1:PORT USER PASSWORD

Exits non-zero, with the failing check on standard error, when anything is wrong.
"""
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager


def connect(uri, user, password):
    return flight_sql.connect(uri, db_kwargs={"username": user, "password": password})


def main():
    uri, user, password = sys.argv[1:4]

    # A wrong password is refused.
    try:
        with connect(uri, user, password + "x") as bad:
            with bad.cursor() as cur:
                cur.execute("SELECT 1")
        sys.exit("a wrong password was accepted")
    except adbc_driver_manager.Error as e:
        assert "wrong user or password" in str(e) or "Unauthenticated" in str(e), e

    with connect(uri, user, password) as conn:
        # Tables, as BI tools list them.
        objects = conn.adbc_get_objects().read_all().to_pylist()
        tables = {
            t["table_name"]
            for catalog in objects
            for schema in catalog["catalog_db_schemas"] or []
            for t in schema["db_schema_tables"] or []
        }
        assert {"customers", "orders", "models"} <= tables, tables

        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n, min(plan) AS plan FROM customers")
            assert cur.fetchall() == [(1000, "basic")], "count"

            # A prepared statement with a bound parameter.
            cur.execute(
                "SELECT customer_id, tenure_months FROM customers WHERE customer_id = $1",
                parameters=(7,),
            )
            rows = cur.fetchall()
            assert len(rows) == 1 and rows[0][0] == 7, rows
            # JDBC and the DB-API's qmark style write `?`.
            cur.execute(
                "SELECT count(*) FROM customers WHERE plan = ? AND tenure_months > ?",
                parameters=("basic", 12),
            )
            (n,) = cur.fetchone()
            assert 0 < n < 1000, n

            # Cohort's own statements, then scoring with the new model.
            cur.execute(
                "CREATE MODEL adbc_churn OPTIONS (model_type = 'logistic_reg', "
                "label = 'churned') AS SELECT churned, tenure_months, monthly_charges "
                "FROM customers"
            )
            created = cur.fetchall()
            assert created[0][0] == "adbc_churn", created
            cur.execute(
                "SELECT avg(PREDICT_CHURN('adbc_churn', tenure_months, monthly_charges)) "
                "FROM customers"
            )
            (mean,) = cur.fetchone()
            assert 0.05 < mean < 0.95, mean
    print("adbc ok")


if __name__ == "__main__":
    main()
