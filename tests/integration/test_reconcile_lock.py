"""The reconciliation pass runs one at a time across every process (#13.1): the workers' passes
and `pixtools reconcile` share a PostgreSQL advisory lock, which PostgreSQL releases when the
process holding it dies."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pixtools.maintenance.reconcile import exclusive
from pixtools.store.database import Database
from tests.support.processes import ROOT

pytestmark = pytest.mark.services

HOLDER = """
import asyncio, sys
from pixtools.maintenance.reconcile import exclusive
from pixtools.store.database import Database

async def main() -> None:
    db = Database(sys.argv[1], pool_size=1)
    async with exclusive(db) as got:
        print("held" if got else "refused", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_one_pass_at_a_time_and_a_dead_holders_lock_is_freed(private_pg_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, private_pg_url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=os.environ,
    )
    db = Database(private_pg_url, pool_size=2)
    other = Database(private_pg_url, pool_size=1)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        # Another process holds it: this one skips its round (and a waiting caller gives up).
        async with exclusive(db) as got:
            assert got is False
        async with exclusive(db, wait=0.5) as got:
            assert got is False
        holder.kill()  # SIGKILL: no unlock; PostgreSQL frees it with the dead connection
        holder.wait(30)
        async with exclusive(db, wait=60) as got:
            assert got is True
            async with exclusive(other) as second:
                assert second is False  # held here now: one pass at a time
        async with exclusive(other) as got:
            assert got is True  # released at the end of the block
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)
        await db.dispose()
        await other.dispose()
