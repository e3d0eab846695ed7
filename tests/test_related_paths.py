"""``related()`` in duo-orm 0.1's forms: relationship attributes, ``path()`` chains,
``where=`` lists, ``aggregate="all"``, ``having=`` and ``order_by=["-count"]``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import duo_orm
from duo_orm import (
    Database,
    ForeignKey,
    InvalidQueryError,
    Mapped,
    Query,
    QueryBuilder,
    String,
    mapped_column,
    path,
    relationship,
)

from .conftest import async_tables, tables


@dataclass
class Blog:
    db: Database
    Author: Any
    Post: Any
    Comment: Any


def define_blog(db: Database) -> Blog:
    class Author(db.Model):
        __tablename__ = "authors"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(20))
        mentor_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id"))
        posts: Mapped[list[Post]] = relationship(back_populates="author")
        mentees: Mapped[list[Author]] = relationship()  # back to the same table

    class Post(db.Model):
        __tablename__ = "posts"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(20))
        score: Mapped[int | None]
        author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
        author: Mapped[Author] = relationship(back_populates="posts")
        comments: Mapped[list[Comment]] = relationship(back_populates="post")

    class Comment(db.Model):
        __tablename__ = "comments"
        id: Mapped[int] = mapped_column(primary_key=True)
        public: Mapped[bool]
        post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))
        post: Mapped[Post] = relationship(back_populates="comments")

    return Blog(db, Author, Post, Comment)


# ann: ann-1 (score 9; 2 public comments), ann-2 (score 7; 1 private comment)
# ben: ben-1 (score 3; 1 public comment);  cat: cat-1 (score NULL);  dan: no posts
# ann mentors ben and cat
AUTHORS = [
    {"id": n, "name": name, "mentor_id": mentor}
    for n, (name, mentor) in enumerate([("ann", None), ("ben", 1), ("cat", 1), ("dan", None)], 1)
]
POSTS = [
    {"id": 1, "title": "ann-1", "score": 9, "author_id": 1},
    {"id": 2, "title": "ann-2", "score": 7, "author_id": 1},
    {"id": 3, "title": "ben-1", "score": 3, "author_id": 2},
    {"id": 4, "title": "cat-1", "score": None, "author_id": 3},
]
COMMENTS = [
    {"id": 1, "public": True, "post_id": 1},
    {"id": 2, "public": True, "post_id": 1},
    {"id": 3, "public": False, "post_id": 2},
    {"id": 4, "public": True, "post_id": 3},
]


@pytest.fixture
def blog(url: str) -> Iterator[Blog]:
    with tables(Database(url), define_blog) as b:
        b.Author.create_bulk([b.Author(**row) for row in AUTHORS])
        b.Post.create_bulk([b.Post(**row) for row in POSTS])
        b.Comment.create_bulk([b.Comment(**row) for row in COMMENTS])
        yield b


@pytest.fixture
async def ablog(url: str) -> AsyncIterator[Blog]:
    async with async_tables(Database(url), define_blog) as b:
        await b.Author.create_bulk([b.Author(**row) for row in AUTHORS])
        await b.Post.create_bulk([b.Post(**row) for row in POSTS])
        await b.Comment.create_bulk([b.Comment(**row) for row in COMMENTS])
        yield b


def names(rows: list[Any]) -> list[str]:
    return [row.name for row in rows]


def test_related_takes_the_relationship_attribute_and_a_path_sync(blog: Blog) -> None:
    A, P, C = blog.Author, blog.Post, blog.Comment
    by_attribute = A.related(A.posts).order_by("name").all()
    assert [sorted(p.title for p in a.posts) for a in by_attribute[:2]] == [
        ["ann-1", "ann-2"],
        ["ben-1"],
    ]
    # both hops loaded: the detached posts' comments can be read
    deep = A.related(path(A.posts, P.comments)).order_by("name").all()
    assert sorted(len(p.comments) for p in deep[0].posts) == [1, 2]
    # where= applies to the end of the path: parents reach a match, only matches load
    private = A.related(path(A.posts, P.comments), where=[C.public.is_(False)]).all()
    assert names(private) == ["ann"]
    assert sorted(len(p.comments) for p in private[0].posts) == [0, 1]
    engaged = A.related(
        path(A.posts, P.comments),
        aggregate="count",
        where=[C.public.is_(True)],
        having=[lambda count: count >= 2],
    ).all()
    assert names(engaged) == ["ann"]
    # a scalar hop at the start of a path: comments -> post -> author
    by_ann = C.related(path(C.post, P.author), where=A.name == "ann").order_by("id").all()
    assert [c.id for c in by_ann] == [1, 2, 3] and by_ann[0].post.author.name == "ann"


@pytest.mark.anyio
async def test_related_where_list_all_having_and_count_order_async(ablog: Blog) -> None:
    A, P = ablog.Author, ablog.Post
    both = await A.related(A.posts, where=[P.score > 5, P.title.endswith("-2")]).all()
    assert names(both) == ["ann"] and [p.title for p in both[0].posts] == ["ann-2"]
    # a boolean column on its own is a condition too
    public = await A.related(path(A.posts, P.comments), where=[ablog.Comment.public]).all()
    assert sorted(names(public)) == ["ann", "ben"]
    assert names(await A.related("posts", where=[]).order_by("name").all()) == [
        "ann",
        "ben",
        "cat",
        "dan",
    ]
    # "all": every post scores > 5; an unknown (NULL) score fails, no posts passes
    every = await A.related(A.posts, aggregate="all", where=[P.score > 5]).order_by("name").all()
    assert names(every) == ["ann", "dan"]
    ranked = await A.related(A.posts, aggregate="count", order_by=["-count"]).order_by("name").all()
    assert names(ranked) == ["ann", "ben", "cat", "dan"]
    rising = await A.related(A.posts, aggregate="count", order_by="count").order_by("name").all()
    assert names(rising) == ["dan", "ben", "cat", "ann"]
    one = (
        await A.related(A.posts, aggregate="count", having=[lambda c: c >= 1, lambda c: c < 2])
        .order_by("name")
        .all()
    )
    assert names(one) == ["ben", "cat"]
    # a relationship back to the parent's own table: where= means the mentee
    mentors = await A.related(
        A.mentees, aggregate="count", where=A.name != "cat", having=lambda n: n == 1
    ).all()
    assert names(mentors) == ["ann"]


def test_having_and_order_by_agree_with_min_count_and_order_by_count_sync(blog: Blog) -> None:
    A = blog.Author
    ordered = A.related(A.posts, aggregate="count", order_by_count="desc").order_by("name")
    assert names(ordered.all()) == names(
        A.related(A.posts, aggregate="count", order_by=["-count"]).order_by("name").all()
    )
    assert names(A.related("posts", aggregate="count", min_count=2).all()) == names(
        A.related("posts", aggregate="count", having=lambda c: c >= 2).all()
    )


def test_related_refuses_what_it_cannot_mean() -> None:
    """Every mistake is an InvalidQueryError naming the fix, before any SQL runs."""
    b = define_blog(Database("sqlite:///:memory:"))
    A, P, C = b.Author, b.Post, b.Comment
    mistakes = [
        lambda: A.related(A.posts, where=["score > 5"]),  # SQL text is not a condition
        lambda: A.related(A.posts, where=[P.score > 5, True]),
        lambda: A.related(A.name),  # a column, not a relationship
        lambda: A.related(P.comments),  # not a relationship of Author
        lambda: A.related(path(P.comments)),
        lambda: A.related(42),
        lambda: path(),
        lambda: path(A.posts, A.posts),  # the second hop does not start at Post
        lambda: path(A.posts, "comments"),
        lambda: A.related(A.posts, aggregate="all"),  # all of what?
        lambda: A.related(A.posts, aggregate="sum"),
        lambda: A.related(A.posts, having=[lambda c: c > 1]),  # needs aggregate="count"
        lambda: A.related(A.posts, order_by=["-count"]),
        # unknown sort fields stay an error (0.1 accepts only count too)
        lambda: A.related(A.posts, aggregate="count", order_by=["-title"]),
        lambda: A.related(A.posts, aggregate="count", order_by=[P.score]),
        lambda: A.related(A.posts, aggregate="count", order_by=["count"], order_by_count="asc"),
        lambda: A.related(A.posts, aggregate="count", having=[P.score > 1]),
        lambda: A.related(A.posts, aggregate="count", having=[lambda c: True]),
        lambda: A.related(path(A.posts, P.comments), loader="joined"),  # rows multiply
        lambda: path(A.posts, loader="lazy"),
        lambda: A.related(path(A.posts, P.comments, loader="joined")),  # the path's own
    ]
    for i, mistake in enumerate(mistakes):
        with pytest.raises(InvalidQueryError):
            mistake()
            pytest.fail(f"mistake {i} was accepted")
    assert C.related(path(C.post, P.author), loader="joined") is not None  # no collection
    # related()'s own loader wins over the path's, as in 0.1
    assert A.related(path(A.posts, P.comments, loader="joined"), loader="selectin") is not None


def test_query_builder_is_the_query_class() -> None:
    b = define_blog(Database("sqlite:///:memory:"))
    query = b.Author.where(b.Author.id > 1)
    assert QueryBuilder is Query and isinstance(query, QueryBuilder)
    assert {"QueryBuilder", "path", "json", "array"} <= set(duo_orm.__all__)
