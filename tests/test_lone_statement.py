"""The pooled driver connection lone statements borrow (duo_orm._lone_statement): it
always goes back to the pool as it came, whatever interrupts its way back. A real
PostgreSQL server and psycopg's own connection."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from duo_orm import Database
from duo_orm._lone_statement import checkout, give_back

pytestmark = [pytest.mark.postgres, pytest.mark.anyio, pytest.mark.backends("postgresql")]


async def test_a_connection_cancelled_on_its_way_back_still_goes_back_out_of_autocommit(
    url: str,
) -> None:
    """Autocommit goes off without I/O on an idle psycopg connection, so the way back is
    not shielded from a cancel; when the switch does wait (here, for the connection's
    lock) and is cancelled, the connection still goes back, and out of autocommit."""
    db = Database(url)
    engine = db.async_engine.sync_engine
    try:
        pooled = await checkout(engine)
        driver: Any = pooled.driver_connection
        await driver.set_autocommit(True)
        cancel = anyio.CancelScope()

        async def back() -> None:
            with cancel:
                await give_back(pooled, autocommit=True)

        async with anyio.create_task_group() as tasks:
            await driver.lock.acquire()  # the switch out of autocommit waits for it
            tasks.start_soon(back)
            await anyio.wait_all_tasks_blocked()
            cancel.cancel()
            await anyio.wait_all_tasks_blocked()
            assert engine.pool.checkedout() == 1  # still on its way back, waiting
            driver.lock.release()
        assert engine.pool.checkedout() == 0
        again = await checkout(engine)
        assert again.driver_connection is driver
        assert driver.autocommit is False
        await give_back(again)
    finally:
        await db.async_engine.dispose()
