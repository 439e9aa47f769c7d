"""cohort serve through SQLAlchemy, as Superset uses a database: the Flight SQL dialect
`datafusion://` of flightsql-dbapi. Run by tests/integration/flight.rs with the server's port and
password:

    python tests/python/sqlalchemy_client.py PORT USER PASSWORD

Exits non-zero, with the failing check on standard error, when anything is wrong.
"""
import sys
from urllib.parse import quote

import sqlalchemy as sa


def main():
    port, user, password = sys.argv[1:4]
    def url(pw):
        return f"datafusion://{quote(user)}:{quote(pw)}@127.0.0.1:{port}?insecure=true"

    # A wrong password is refused.
    try:
        with sa.create_engine(url(password + "x")).connect() as bad:
            bad.execute(sa.text("SELECT 1")).fetchall()
        sys.exit("a wrong password was accepted")
    except Exception as e:  # the dialect logs in while making the engine: pyarrow's error
        assert "wrong user or password" in str(e), e

    engine = sa.create_engine(url(password))
    # What Superset's dataset editor reads: schemas, tables, columns and their types.
    inspector = sa.inspect(engine)
    schemas = inspector.get_schema_names()
    assert {"public", "cohort"} <= set(schemas), schemas
    tables = inspector.get_table_names(schema="public")
    assert {"customers", "orders"} <= set(tables), tables
    columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("customers", schema="public")}
    assert columns["customer_id"] == "BIGINT" and columns["plan"] == "TEXT", columns

    # What SQL Lab and a chart run: plain SQL, then cohort's own statements.
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT plan, count(*) AS n FROM customers GROUP BY plan ORDER BY plan")
        ).fetchall()
        assert [r[0] for r in rows] == ["basic", "premium", "standard"], rows
        assert sum(r[1] for r in rows) == 1000, rows
        created = conn.execute(
            sa.text(
                "CREATE MODEL superset_spend OPTIONS (model_type = 'linear_reg', "
                "label = 'monthly_charges') AS SELECT monthly_charges, tenure_months, plan "
                "FROM customers"
            )
        ).fetchall()
        assert created[0][0] == "superset_spend", created
        (mean,) = conn.execute(
            sa.text(
                "SELECT avg(PREDICT('superset_spend', tenure_months, plan)) - "
                "avg(monthly_charges) FROM customers"
            )
        ).fetchone()
        assert abs(mean) < 1e-6, mean
    print("sqlalchemy ok")


if __name__ == "__main__":
    main()
