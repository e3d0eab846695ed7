"""``duo_orm.web.listing``, framework-neutral: filters, sort, offset and cursor pages.

Each adapter only hands ``Listing.parse`` the raw query string, so what is checked
here holds for all three (``test_listing_adapters.py`` checks that they do). Real
databases: the keyset conditions and the value parsing must hold on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from duo_orm import Database
from duo_orm.exceptions import ConfigurationError, InvalidQueryError
from duo_orm.web.listing import Listing, ListParams, Page

from ..conftest import tables
from .listing_events import define, listing, rows


@pytest.fixture
def Event(url: str) -> Iterator[Any]:
    with tables(Database(url), define) as model:
        model.create_bulk(rows())
        yield model


def page(spec: Listing, model: Any, query: str) -> Page[Any]:
    return spec.parse(parse_qsl(query, keep_blank_values=True), "/events").apply(model).page()


def follow(spec: Listing, model: Any, link: str) -> Page[Any]:
    parts = urlsplit(link)
    assert parts.path == "/events"
    return page(spec, model, parts.query)


def ids(result: Page[Any]) -> list[int]:
    return [row.id for row in result.items]


def expected_order(model: Any, sort: str) -> list[int]:
    """The order ``sort`` means: ties broken by the key, in the last field's direction."""
    terms = sort.split(",")
    rows = sorted(model.all(), key=lambda row: row.id, reverse=terms[-1].startswith("-"))
    for part in reversed(terms):  # stable sorts, last key first
        name = part.lstrip("-")
        rows.sort(key=lambda row, name=name: getattr(row, name), reverse=part.startswith("-"))
    return [row.id for row in rows]


def test_cursor_pages_walk_every_row_once_both_ways(Event: Any) -> None:
    for sort in ["id", "-name", "score,-name", "-at", "day,-score,name"]:
        walk_both_ways(listing(Event), Event, sort)
    unsorted = page(listing(Event), Event, "size=20&cursor=")  # the primary key's order
    assert unsorted.next is not None
    assert ids(follow(listing(Event), Event, unsorted.next)) == [21, 22, 23]


def walk_both_ways(spec: Listing, Event: Any, sort: str) -> None:
    first = page(spec, Event, f"sort={sort}&size=5&cursor=")
    assert first.previous is None and first.page is None and first.total is None
    pages, current = [first], first
    while current.next is not None:
        current = follow(spec, Event, current.next)
        pages.append(current)
    walked = [row_id for p in pages for row_id in ids(p)]
    assert walked == expected_order(Event, sort)
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    back = [ids(current)]
    while current.previous is not None:
        current = follow(spec, Event, current.previous)
        back.append(ids(current))
    assert back[::-1] == [ids(p) for p in pages]  # the same pages, found backwards
    offset = [ids(page(spec, Event, f"sort={sort}&size=5&page={n}")) for n in range(1, 6)]
    assert offset == [ids(p) for p in pages]


def test_offset_pages_count_and_link(Event: Any) -> None:
    spec = listing(Event)
    second = page(spec, Event, "sort=-id&size=10&page=2&active=true&utm=x")
    assert (second.page, second.total, second.size) == (2, 12, 10)
    assert ids(second) == [3, 1]
    assert second.next is None
    assert second.previous == "/events?sort=-id&size=10&active=true&utm=x&page=1"
    uncounted = listing(Event, count=False)
    first = page(uncounted, Event, "size=10")
    assert first.total is None and first.next is not None  # found by reading one row more
    assert page(uncounted, Event, "size=10&page=3").next is None


FILTERS = [
    ("name=ann", [1, 5, 9, 13, 17, 21]),
    ("name__icontains=ANN", [1, 5, 8, 9, 13, 16, 17, 21]),
    ("name__icontains=%_", [7, 15, 23]),  # wildcards are literal characters
    ("name__istartswith=AN&score__gt=0", [5, 8, 9, 17, 21]),
    ("name__in=cy,dee&score__ge=1", [3, 11, 12, 20]),
    ("name__ne=ann&score__lt=1&day__ge=2026-01-04", [4, 10, 19]),
    ("score__le=0&at__lt=2026-01-01T09:00:00Z", [1, 4, 7]),
    ("at__ge=2026-01-01T21:00:00&active=true", [23]),  # naive: UTC
    ("at__ge=2026-01-01T23:30:00%2B02:00", [23]),  # = 2026-01-01T21:30Z
    ("note__is_null=true&day__lt=2026-01-03", [1, 17, 21]),
    ("note__is_null=false&name=ann", []),
    ("score__in=2&day__lt=2026-01-02", [6, 21]),
]


def test_filters_read_values_by_column_type(Event: Any) -> None:
    spec = listing(Event)
    for query, expected in FILTERS:
        assert ids(page(spec, Event, query + "&size=50")) == expected, query


def test_apply_keeps_the_routes_own_conditions(Event: Any) -> None:
    params = listing(Event).parse([("name", "bob")])
    assert isinstance(params, ListParams)
    assert ids(params.apply(Event.where(Event.score == 1)).page()) == [2, 14]
    with pytest.raises(ConfigurationError, match="sorts and pages the query itself"):
        params.apply(Event.order_by("name"))


def refused(spec: Listing, model: Any, query: str) -> str:
    with pytest.raises(InvalidQueryError) as caught:
        page(spec, model, query)
    return str(caught.value)


REFUSED = [
    ("secret=hidden", "cannot filter by 'secret'; filterable fields are: name, score"),
    ("secret__icontains=h", "cannot filter by 'secret'"),
    ("nope__eq=1", "cannot filter by 'nope'"),
    ("score__icontains=1", "score cannot be filtered with 'icontains'"),
    ("name__regex=.*", "name cannot be filtered with 'regex'"),
    ("score__gt=ten", "'score__gt' must be an integer, got 'ten'"),
    ("score__gt=99999999999999999999", "out of range"),
    ("day__ge=2026-13-01", "'day__ge' must be an ISO 8601 date"),
    ("at__lt=yesterday", "must be an ISO 8601 date-time"),
    ("active=maybe", "'active' must be true or false"),
    ("note__is_null=1x", "must be true or false"),
    ("score__in=" + ",".join(["1"] * 101), "takes at most 100 values"),
    ("size=51", "size must be between 1 and 50, got 51"),
    ("size=0", "size must be between 1 and 50"),
    ("size=1e3", "'size' must be an integer"),
    ("page=0", "page must be between 1 and 1000000"),
    ("size=2&size=3", "'size' is given more than once"),
    ("sort=secret", "cannot sort by 'secret'; sortable fields are: id, name, score, at, day"),
    ("sort=name,-name", "sort names 'name' twice"),
    ("sort=name%20desc", "cannot sort by 'name desc'"),
    ("page=2&cursor=", "page and cursor cannot be combined"),
    ("cursor=not-a-cursor", "cursor is invalid or expired"),
    ("cursor=" + "A" * 2000 + ".B", "cursor is invalid or expired"),
]


def test_bad_input_is_a_typed_error_naming_the_problem(Event: Any) -> None:
    spec = listing(Event)
    for query, message in REFUSED:
        text = refused(spec, Event, query)
        assert message in text, query
        assert "SELECT" not in text and len(text) < 300


def test_cursors_are_tamper_evident(Event: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = listing(Event, secret="one key")
    link = page(spec, Event, "sort=-score&size=3&cursor=").next
    assert link is not None
    token = dict(parse_qsl(urlsplit(link).query))["cursor"]
    payload, tag = token.split(".")
    assert ids(page(spec, Event, f"size=3&cursor={token}")) == expected_order(Event, "-score")[3:6]
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert "invalid or expired" in refused(spec, Event, f"cursor={flipped}.{tag}")
    # another key (another deployment, or a restart without a shared secret)
    assert "invalid or expired" in refused(listing(Event, secret="other"), Event, f"cursor={token}")
    monkeypatch.setenv("DUO_ORM_CURSOR_SECRET", "one key")  # what workers share
    shared = page(listing(Event), Event, f"size=3&cursor={token}")
    assert ids(shared) == expected_order(Event, "-score")[3:6]
    assert "differs from the cursor" in refused(spec, Event, f"sort=id&cursor={token}")


def test_declaration_mistakes_fail_at_import(Event: Any) -> None:
    with pytest.raises(ConfigurationError, match="'nope', not fields of Event"):
        Listing(Event, sort=("nope",))
    with pytest.raises(ConfigurationError, match="text operators need a text column"):
        Listing(Event, filters={"score": ("icontains",)})
    with pytest.raises(ConfigurationError, match="operators are eq, ne"):
        Listing(Event, filters={"name": ("like",)})
    with pytest.raises(ConfigurationError, match="default_size <= max_size"):
        Listing(Event, default_size=200)
    with pytest.raises(ConfigurationError, match="cannot sort by 'secret'"):
        Listing(Event, sort=("id",), default_sort="secret")
    nullable = Listing(Event, sort=("note",))  # NULLs have no place in a keyset order
    assert not nullable.keyset
    assert "no cursor pagination" in refused(nullable, Event, "cursor=")
