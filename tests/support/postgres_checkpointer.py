"""A checkpointer factory as a deer-flow deployment configures one: PostgreSQL, through psycopg."""

from __future__ import annotations

from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row

from tests.support import services

connections: list[psycopg.AsyncConnection[Any]] = []


async def postgres_saver() -> AsyncPostgresSaver:
    """Return a saver on POSTGRES_TEST_URL (LANGGRAPH_CHECKPOINTER names this factory)."""
    connection = await psycopg.AsyncConnection.connect(
        services.postgres_url(), autocommit=True, prepare_threshold=0, row_factory=dict_row
    )
    connections.append(connection)
    saver = AsyncPostgresSaver(connection)
    await saver.setup()
    return saver


async def close_all() -> None:
    """Close the connections the factory opened."""
    while connections:
        await connections.pop().close()
