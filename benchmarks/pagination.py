"""Deep pages of a 1,000,000-row table: offset against keyset (cursor) pagination.

Both go through ``duo_orm.web.listing`` as a request would (``Listing.parse`` then
``apply(...).page()``), so what is timed is the whole listing path. The offset page
is ``?page=5000`` (the listing set not to count, so the COUNT does not blur the
offset's own cost); the keyset page is the same rows reached with the cursor the
4,999th page's ``next`` link would carry. Page 1 is the reference: there the two are
the same query. Each row is the median of a few runs after one warm-up run.

The rows are made by the database itself (a recursive CTE on SQLite,
``generate_series`` on PostgreSQL), a few seconds each, never in the test suite.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from typing import Any

from sqlalchemy import Index, text

from duo_orm import Database, Mapped, String, mapped_column
from duo_orm.web.listing import Listing
from duo_orm.web.listing.cursor import Cursor, sign
from duo_orm.web.listing.values import write

ROWS = 1_000_000
PAGE = 5_000
SIZES = (20, 200)  # with 200 a row, page 5,000 is the table's last page
SORTS = ("id", "-created_at")
HEADER = (
    "| database | sort | size | page 1 ms | page 5,000 offset ms | page 5,000 keyset ms "
    "| offset / keyset |\n|---|---|---:|---:|---:|---:|---:|"
)

_SQLITE_FILL = """
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :rows)
INSERT INTO pages (id, name, created_at)
SELECT x, 'name ' || (x % 1000),
       strftime('%Y-%m-%d %H:%M:%f', '2020-01-01', '+' || ((x * 7919) % :rows) || ' seconds')
       || '000'
FROM n
"""
_POSTGRESQL_FILL = """
INSERT INTO pages (id, name, created_at)
SELECT g, 'name ' || (g % 1000),
       timestamp '2020-01-01' + ((g::bigint * 7919) % :rows) * interval '1 second'
FROM generate_series(1, :rows) AS g
"""


def define(db: Database) -> Any:
    class Row(db.Model):
        __tablename__ = "pages"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(20))
        created_at: Mapped[dt.datetime]  # unique: 7919 * x mod 10**6 is a permutation
        __table_args__ = (Index("pages_created_at_id", "created_at", "id"),)

    return Row


def fill(db: Database, kind: str) -> float:
    started = time.perf_counter()
    with db.transaction() as session:
        statement = _SQLITE_FILL if kind == "sqlite" else _POSTGRESQL_FILL
        session.execute(text(statement), {"rows": ROWS})
    with db.sync_engine.connect() as connection:  # fresh statistics for the planner
        connection.execute(text("ANALYZE"))
        connection.commit()
    return time.perf_counter() - started


def timed(work: Any, runs: int) -> float:
    work()  # warm-up: caches, statement compilation
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def rows(kind: str, url: str, runs: int) -> list[str]:
    db = Database(url)
    Row = define(db)
    db.create_all()
    try:
        seconds = fill(db, kind)
        print(f"({kind}: {ROWS:,} rows made in {seconds:.1f} s)", flush=True)
        listing = Listing(
            Row, sort=("id", "created_at"), count=False, max_size=max(SIZES), secret="bench"
        )
        lines = []
        for sort in SORTS:
            for size in SIZES:
                lines.append(_row(kind, listing, Row, sort, size, runs))
                print(lines[-1], flush=True)
        return lines
    finally:
        db.drop_all()
        db.disconnect()


def _row(kind: str, listing: Listing, Row: Any, sort: str, size: int, runs: int) -> str:
    def page(*items: tuple[str, str]) -> Any:
        params = listing.parse([("sort", sort), ("size", str(size)), *items])
        return params.apply(Row).page()

    before = page(("page", str(PAGE - 1))).items[-1]  # the row the cursor starts after
    keys = ("created_at", "id") if sort == "-created_at" else ("id",)
    cursor = Cursor("after", sort, tuple(write(getattr(before, key)) for key in keys))
    token = sign(cursor, listing.cursor_key(), Row.__name__)
    offset_rows = [r.id for r in page(("page", str(PAGE))).items]
    keyset_rows = [r.id for r in page(("cursor", token)).items]
    assert offset_rows == keyset_rows and len(offset_rows) == size, "the pages differ"
    first = timed(lambda: page(("page", "1")), runs)
    offset = timed(lambda: page(("page", str(PAGE))), runs)
    keyset = timed(lambda: page(("cursor", token)), runs)
    return (
        f"| {kind} | {sort} | {size} | {first * 1e3:.2f} | {offset * 1e3:.2f} | "
        f"{keyset * 1e3:.2f} | **{offset / keyset:.0f}x** |"
    )
