"""What a client holding a valid login can try against `cohort serve`, through the real
Python ADBC Flight SQL driver. Run by tests/integration/flight.rs against a server started
with a users file (reader, analyst and admin), one --allow-files folder, a 2 s statement
timeout and an audit log:

    python tests/python/adbc_attack.py grpc://127.0.0.1:PORT DIR

DIR holds `allowed/` (the allowed folder, with data.csv, a link to a file outside and a
link to a folder outside) and `outside/` (secret.csv). Exits non-zero, with the failing
check on standard error, when anything is wrong.
"""
import os
import sys
import time

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager

PASSWORDS = {"reader": "reader pass 1", "analyst": "analyst pass 2", "admin": "admin pass 3"}


def connect(uri, user, password=None):
    password = PASSWORDS[user] if password is None else password
    return flight_sql.connect(uri, db_kwargs={"username": user, "password": password})


def run(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def refused(conn, sql, says):
    """`sql` fails with PermissionDenied and a message holding `says`."""
    try:
        run(conn, sql)
    except adbc_driver_manager.Error as e:
        text = str(e)
        assert "PermissionDenied" in text or "PERMISSION_DENIED" in text, (sql, text)
        assert says in text, (sql, says, text)
        return
    sys.exit(f"accepted: {sql}")


def files(uri, base):
    allowed = os.path.join(base, "allowed")
    outside = os.path.join(base, "outside")
    escapes = {
        # Reading anything the server can read.
        "SELECT * FROM '/etc/passwd'": "reading '/etc/passwd' is refused",
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'": "is refused",
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION 'file:///etc/passwd'": "is refused",
        f"SELECT * FROM '{outside}/secret.csv'": "is refused",
        # Out of the allowed folder by `..` and by links inside it.
        f"SELECT * FROM '{allowed}/../outside/secret.csv'": "is refused",
        f"SELECT * FROM '{allowed}/link.csv'": "is refused",
        f"SELECT * FROM '{allowed}/linkdir/secret.csv'": "is refused",
        f"SELECT * FROM (SELECT * FROM '{allowed}/link.csv') t": "is refused",
        # Writing anywhere the server can write.
        f"COPY (SELECT 'x' AS a) TO '{outside}/written.csv'": "writing",
        f"COPY (SELECT 'x' AS a) TO '{allowed}/../written.csv'": "writing",
        f"COPY (SELECT 'x' AS a) TO '{allowed}/linkdir/written.csv'": "writing",
        "COPY (SELECT 'x' AS a) TO 's3://bucket/written.csv'": "writing",
    }
    inside = {
        f"SELECT * FROM '{allowed}/data.csv'": "may not use the server's files",
        f"CREATE EXTERNAL TABLE ext STORED AS CSV LOCATION '{allowed}/data.csv'":
            "may not use the server's files",
        f"COPY (SELECT 1 AS a) TO '{allowed}/copy.csv'": "may not use the server's files",
    }
    for user in ["reader", "analyst", "admin"]:
        with connect(uri, user) as conn:
            for sql, says in escapes.items():
                refused(conn, sql, says)
            if user != "admin":
                for sql, says in inside.items():
                    refused(conn, sql, says)
    for name in ["written.csv", os.path.join("outside", "written.csv")]:
        assert not os.path.exists(os.path.join(base, name)), name
    assert not os.path.exists(os.path.join(allowed, "copy.csv"))

    # An admin uses the files of the allowed folder.
    with connect(uri, "admin") as conn:
        assert run(conn, f"SELECT count(*) FROM '{allowed}/data.csv'") == [(2,)]
        run(conn, f"CREATE EXTERNAL TABLE ext STORED AS CSV LOCATION '{allowed}/data.csv'")
        assert run(conn, "SELECT sum(amount) FROM ext") == [(30,)]
        run(conn, f"COPY (SELECT 1 AS a) TO '{allowed}/copy.csv'")
    assert os.path.exists(os.path.join(allowed, "copy.csv"))


def roles(uri):
    with connect(uri, "analyst") as analyst:
        for sql in [
            "CREATE MODEL churn OPTIONS (model_type = 'logistic_reg', label = 'churned') AS "
            "SELECT churned, tenure_months, monthly_charges FROM customers",
            "CREATE OR REPLACE MODEL churn OPTIONS (model_type = 'logistic_reg', "
            "label = 'churned') AS SELECT churned, tenure_months, monthly_charges FROM customers",
            "CREATE VIEW premium AS SELECT * FROM customers WHERE plan = 'premium'",
            "CREATE TABLE my_plans AS SELECT DISTINCT plan FROM customers",
            "INSERT INTO my_plans VALUES ('trial')",
            "CREATE MODEL scratch OPTIONS (model_type = 'kmeans', num_clusters = 2) AS "
            "SELECT tenure_months, monthly_charges FROM customers",
            "DROP MODEL scratch",
        ]:
            run(analyst, sql)
        assert run(analyst, "SELECT count(*) FROM my_plans") == [(4,)]
        refused(analyst, "DROP TABLE customers", "role analyst may not drop")
        refused(analyst, "INSERT INTO customers SELECT * FROM customers LIMIT 1",
                "role analyst may not")
        refused(analyst, "SET datafusion.runtime.memory_limit = '1T'",
                "SET datafusion.runtime.* needs role admin")
        refused(analyst, "CREATE SCHEMA mine", "needs role admin")

        with connect(uri, "reader") as reader:
            (mean,) = run(
                reader,
                "SELECT avg(PREDICT_CHURN('churn', tenure_months, monthly_charges)) "
                "FROM customers",
            )[0]
            assert 0.05 < mean < 0.95, mean
            assert ("churn",) in [r[:1] for r in run(reader, "SHOW MODELS")]
            assert run(reader, "DESCRIBE MODEL churn")
            assert run(reader, "SELECT * FROM EXPLAIN_MODEL('churn')")
            assert run(reader, "SELECT count(*) FROM customers") == [(1000,)]
            run(reader, "SET datafusion.execution.batch_size = 1024")
            for sql, says in {
                "CREATE MODEL mine OPTIONS (model_type = 'linear_reg', label = 'x') AS "
                "SELECT 1.0 AS x, 2.0 AS y": "CREATE MODEL needs role analyst or admin",
                "DROP MODEL churn": "needs role analyst or admin",
                "CREATE VIEW v AS SELECT 1": "CREATE VIEW needs role analyst or admin",
                "CREATE TABLE t AS SELECT 1": "needs role analyst or admin",
                "INSERT INTO customers SELECT * FROM customers LIMIT 1": "role reader may not",
                "DROP TABLE customers": "role reader may not",
                "SET datafusion.runtime.memory_limit = '1T'": "needs role admin",
            }.items():
                refused(reader, sql, says)
            # An analyst's views and tables are its session's own.
            for table in ["premium", "my_plans"]:
                try:
                    run(reader, f"SELECT * FROM {table}")
                    sys.exit(f"{table} is visible to another session")
                except adbc_driver_manager.Error as e:
                    assert table in str(e), e

            # An admin changes shared tables: everyone sees them.
            with connect(uri, "admin") as admin:
                run(admin, "CREATE TABLE team_plans AS SELECT DISTINCT plan FROM customers")
                run(admin, "SET datafusion.runtime.memory_limit = '2G'")
            assert run(reader, "SELECT count(*) FROM team_plans") == [(3,)]


def timeout(uri):
    with connect(uri, "reader") as reader:
        start = time.monotonic()
        try:
            run(reader, "SELECT v % 1000 AS k, count(*) FROM generate_series(1, 1000000000000) "
                        "t(v) GROUP BY k")
            sys.exit("the runaway query was not stopped")
        except adbc_driver_manager.Error as e:
            assert "statement timeout" in str(e), e
        took = time.monotonic() - start
        assert 2 <= took < 10, took
        # The server goes on serving, this session included.
        assert run(reader, "SELECT count(*) FROM customers") == [(1000,)]


def attempt(uri, user, password):
    """Seconds one login attempt took, and whether it succeeded."""
    start = time.monotonic()
    try:
        with connect(uri, user, password) as conn:
            run(conn, "SELECT 1")
        ok = True
    except adbc_driver_manager.Error as e:
        assert "wrong user or password" in str(e) or "Unauthenticated" in str(e), e
        ok = False
    return time.monotonic() - start, ok


def throttling(uri):
    for _ in range(5):
        took, ok = attempt(uri, "reader", "guess")
        assert not ok and took < 1, took
    took, ok = attempt(uri, "reader", "guess")
    assert not ok and took >= 1, took
    took, ok = attempt(uri, "reader", "guess")
    assert not ok and took >= 2, took
    # Other users are not slowed.
    took, ok = attempt(uri, "analyst", PASSWORDS["analyst"])
    assert ok and took < 1, took
    # The right password still gets in (at once: it logged in a moment ago, and a login
    # seen recently is not checked again), and that resets the count.
    took, ok = attempt(uri, "reader", PASSWORDS["reader"])
    assert ok, took
    took, ok = attempt(uri, "reader", "guess")
    assert not ok and took < 1, took


def main():
    uri, base = sys.argv[1:3]
    files(uri, base)
    roles(uri)
    timeout(uri)
    throttling(uri)
    print("attacks refused")


if __name__ == "__main__":
    main()
