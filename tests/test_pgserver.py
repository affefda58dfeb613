from __future__ import annotations

import pytest


@pytest.mark.postgres
def test_postgres_server_answers(pg_dsn):
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("select 1 + 1").fetchone()[0] == 2
