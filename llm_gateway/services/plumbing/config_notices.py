"""Config notices: a committed change to settings or models makes every instance re-read.

Instances cache what staff can change at runtime (provider credentials, limits), so a
change is followed, once committed, by ``ConfigChanged`` on ``CONFIG_CHANNEL``; every
instance's ``watch`` then refreshes. The instance that made the change refreshes at once
as well, so its own next request already sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.engine import after_commit
from llm_gateway.errors import ServiceUnavailable
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.broker_events import (
    CONFIG_CHANNEL,
    MODELS_CHANGED_KEY,
    ConfigChanged,
)

logger = logging.getLogger("llm_gateway.config")

Refresh = Callable[[], Awaitable[None]]
"""This instance's reaction to a config notice (the app's ``refresh_config``)."""

RETRY_SECONDS = 1.0


def after_change(
    session: AsyncSession, broker: Broker | None, key: str, *, refresh: Refresh | None = None
) -> None:
    """After this unit of work commits: tell every instance ``key`` changed, then await
    ``refresh`` here; nothing if it rolls back.

    ``broker`` None: no notice (seeding, scripts); ``refresh`` None: this instance follows
    on the notice, like the others.
    """
    if broker is not None:
        after_commit(session, partial(broker.send, ConfigChanged(key)))
    if refresh is not None:
        after_commit(session, refresh)


def after_catalog_change(session: AsyncSession, broker: Broker) -> None:
    """After this unit of work commits: tell every instance the model registry (models,
    agents) changed. Models are read per request; what the notice refreshes is the
    credentials and settings cached alongside."""
    after_change(session, broker, MODELS_CHANGED_KEY)


async def watch(broker: Broker, on_change: Refresh) -> None:
    """Await ``on_change`` whenever any instance changes a setting (cancel to stop).

    Notices sent while the broker was down are lost, so after every reconnect the
    settings are re-read once.
    """
    missed = False
    while True:
        try:
            async with broker.subscribe(CONFIG_CHANNEL) as events:
                if missed:
                    await on_change()
                    missed = False
                async for _ in events:
                    await on_change()
        except ServiceUnavailable:
            missed = True  # the broker logs its own state
            await asyncio.sleep(RETRY_SECONDS)
        except Exception:
            missed = True
            logger.exception("config channel unavailable; retrying")
            await asyncio.sleep(RETRY_SECONDS)
