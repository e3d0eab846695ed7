"""``per_batch_transaction=True``: a hooked bulk walk that commits batch by batch."""

from __future__ import annotations

import pytest

from duo_orm import InvalidQueryError, UnsupportedOperationError, ValidationError

from .models import Models

TOTALS = [10, 10, 10, 1, 10]  # the fourth row fails validate() once 3 is taken off


def seed(models: Models) -> object:
    return models.Order.create_bulk(
        [models.Order(id=i, total=total, customer_id=1) for i, total in enumerate(TOTALS, 1)]
    )


def totals(models: Models) -> list[int]:
    from sqlalchemy import select

    with models.db.sync_standalone_session() as session:
        return list(session.scalars(select(models.Order.total).order_by(models.Order.id)))


def test_batches_commit_one_by_one_only_when_asked_sync(m: Models) -> None:
    m.Customer.create(id=1, name="ann")
    seed(m)
    Order = m.Order
    with pytest.raises(ValidationError):
        Order.where(Order.total > 0).update_bulk(
            total=Order.total - 3, with_hooks=True, batch_size=2
        )
    assert totals(m) == TOTALS  # the default: all or nothing
    with pytest.raises(ValidationError):
        Order.where(Order.total > 0).update_bulk(
            total=Order.total - 3, with_hooks=True, batch_size=2, per_batch_transaction=True
        )
    assert totals(m) == [7, 7, 10, 1, 10]  # the first batch stayed; its failing one did not
    deleted = Order.where(Order.id > 1).delete_bulk(
        with_hooks=True, batch_size=2, per_batch_transaction=True
    )
    assert deleted == 4 and totals(m) == [7]
    # without hooks there are no batches: one statement, committed once
    assert Order.where(Order.id == 1).update_bulk(total=8, per_batch_transaction=True) == 1


@pytest.mark.anyio
async def test_batches_commit_one_by_one_async(am: Models) -> None:
    await am.Customer.create(id=1, name="ann")
    await seed(am)  # type: ignore[misc]
    Order = am.Order
    with pytest.raises(ValidationError):
        await Order.where(Order.total > 0).update_bulk(
            total=Order.total - 3, with_hooks=True, batch_size=2, per_batch_transaction=True
        )
    assert totals(am) == [7, 7, 10, 1, 10]
    done = await Order.where(Order.total > 5).delete_bulk(
        with_hooks=True, batch_size=3, per_batch_transaction=True
    )
    assert done == 4 and totals(am) == [1]


def test_batches_cannot_commit_inside_a_transaction(m: Models) -> None:
    m.Customer.create(id=1, name="ann")
    seed(m)
    Order = m.Order
    with (
        pytest.raises(UnsupportedOperationError, match="inside a transaction"),
        m.db.transaction(),
    ):
        Order.where(Order.id > 0).delete_bulk(with_hooks=True, per_batch_transaction=True)
    assert totals(m) == TOTALS
    with pytest.raises(InvalidQueryError, match="True or False"):
        Order.where(Order.id > 0).delete_bulk(with_hooks=True, per_batch_transaction="yes")  # type: ignore[arg-type]
