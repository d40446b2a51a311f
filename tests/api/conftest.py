"""Fixtures of the /v1 tests: the fake upstreams, settings pointing at them, a live gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llm_gateway.settings import Settings
from tests.api_support import Upstreams, api_settings, upstreams
from tests.live import LiveServer, live_server


@pytest.fixture
async def fakes() -> AsyncIterator[Upstreams]:
    async with upstreams() as running:
        yield running


@pytest.fixture
def settings(database_url: str, fakes: Upstreams) -> Settings:
    return api_settings(database_url, fakes)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(settings) as running:
        yield running
