"""The plant-wide history on a real PostgreSQL (Debian's server, a fresh cluster on a free
port): two gateways write to one table; with the database stopped for 10 s under load, every
result arrives exactly once after it returns, and results kept locally survive a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.app import Gateway
from gateway.model import InspectionResult, Origin, Trigger
from simulators.postgres import PostgresServer, postgres_available
from tests.conftest import ROOT, make_config, require, wait_until

TABLE = "inspection_results"


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    require(postgres_available())
    with PostgresServer() as server:
        yield server


def plant_config(gateway_id: str, dsn: str, data_dir: Path) -> Any:
    history = {"data_dir": str(data_dir), "postgres": {"dsn": dsn, "retry_s": 0.5}}
    return make_config(gateway_id=gateway_id, history=history, http={"enabled": False})


def rows(dsn: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(dsn) as db:
        return [
            (str(g), str(s), int(r))
            for g, s, r in db.execute(f"SELECT gateway_id, stream, result_id FROM {TABLE}")
        ]


async def trigger_many(gateway: Gateway, count: int, pace_s: float = 0.0) -> None:
    for _ in range(count):
        await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
        await asyncio.sleep(pace_s)


def keys(gateway_id: str, results: list[InspectionResult]) -> set[tuple[str, str, int]]:
    return {(gateway_id, result.stream, result.result_id) for result in results}


async def test_two_gateways_one_table_and_an_outage_loses_nothing(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    published: dict[str, list[InspectionResult]] = {"line1": [], "line2": []}
    async with AsyncExitStack() as stack:
        gateways = []
        for gateway_id in published:
            config = plant_config(gateway_id, postgres.dsn, tmp_path / gateway_id)
            gateway = Gateway(config, config_dir=ROOT)
            gateway.bus.subscribe(published[gateway_id].append)
            gateways.append(await stack.enter_async_context(gateway))
        await wait_until(lambda: all(g.streams["cam"].capture.latest() for g in gateways), 10)
        await asyncio.gather(*(trigger_many(g, 20) for g in gateways))
        await wait_until(lambda: len(rows(postgres.dsn)) == 40, 15)

        postgres.stop()
        started = time.monotonic()
        load = [asyncio.create_task(trigger_many(g, 10_000, 0.02)) for g in gateways]
        await asyncio.sleep(10)  # 10 s without the database, under load
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
        kept = [g.plant_history.queued for g in gateways if g.plant_history is not None]
        assert all(count > 50 for count in kept), kept  # waiting locally
        postgres.start()
        assert time.monotonic() - started >= 10
        await wait_until(lambda: all(g.plant_history.queued == 0 for g in gateways), 30)  # type: ignore[union-attr]

    stored = rows(postgres.dsn)
    expected = keys("line1", published["line1"]) | keys("line2", published["line2"])
    assert len(stored) == len(set(stored)) == len(expected)  # each exactly once
    assert set(stored) == expected


async def test_results_kept_while_the_database_is_away_survive_a_restart(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Written to the local outbox while PostgreSQL is down, the gateway stopped, started again
    with the database back: they arrive, once."""
    config = plant_config("line1", postgres.dsn, tmp_path / "line1")
    postgres.stop()
    published: list[InspectionResult] = []
    gateway = Gateway(config, config_dir=ROOT)
    gateway.bus.subscribe(published.append)
    async with gateway:
        await wait_until(lambda: gateway.streams["cam"].capture.latest() is not None, 10)
        await trigger_many(gateway, 15)
        assert gateway.plant_history is not None and gateway.plant_history.queued == 15
    postgres.start()
    async with Gateway(config, config_dir=ROOT) as again:
        await wait_until(lambda: again.plant_history.queued == 0, 30)  # type: ignore[union-attr]
    assert sorted(rows(postgres.dsn)) == sorted(keys("line1", published))
