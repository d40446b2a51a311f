"""A websocket outlives its access token: operations after the token's expiry are refused."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import make_settings
from tests.live import graphql_socket, live_server
from tests.support import token


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_operations_after_expiry_are_unauthenticated(database_url: str) -> None:
    settings = make_settings(database_url, jwt_leeway_seconds=0)
    short = token(7, lifetime_seconds=2)
    expires = time.time() + 2
    auth = {"Authorization": f"Bearer {short}"}
    async with live_server(settings) as server, graphql_socket(server, auth) as socket:
        alive = await socket.execute("{ me { userId } }")
        assert alive["data"]["me"]["userId"] == 7
        # Time itself is what this test is about: wait for the token to lapse.
        await asyncio.sleep(max(0.0, expires - time.time()) + 1.1)
        expired = await socket.execute("{ me { userId } }")
        assert expired["data"] is None
        assert expired["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "expired" in expired["errors"][0]["message"]
