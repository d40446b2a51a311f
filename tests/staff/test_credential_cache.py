"""Provider credentials cached per process: one read at a time, and no change lost to a
read that was under way when it was announced."""

from __future__ import annotations

import asyncio

from llm_gateway.providers.registry import Credentials
from llm_gateway.services.staff.credential_cache import CredentialCache


class Settings:
    """What ``system_config`` holds, read slowly enough for callers to overlap."""

    def __init__(self) -> None:
        self.key = "sk-first"
        self.reads = 0
        self.release = asyncio.Event()
        self.release.set()

    async def load(self) -> dict[str, str]:
        self.reads += 1
        key = self.key  # what the read found, whatever happens before it returns
        await self.release.wait()
        return {"OPENAI_API_KEY": key}


async def test_callers_that_find_it_stale_share_one_read() -> None:
    settings = Settings()
    cache = CredentialCache(Credentials(), settings.load, ttl_seconds=60)
    settings.release.clear()
    callers = [asyncio.create_task(cache()) for _ in range(20)]
    await asyncio.sleep(0.01)
    settings.release.set()
    found = await asyncio.gather(*callers)
    assert settings.reads == 1
    assert {c.openai_api_key for c in found} == {"sk-first"}
    assert (await cache()).openai_api_key == "sk-first"
    assert settings.reads == 1  # within the TTL


async def test_a_change_announced_during_a_read_is_read_next() -> None:
    settings = Settings()
    cache = CredentialCache(Credentials(), settings.load, ttl_seconds=60)
    settings.release.clear()
    reading = asyncio.create_task(cache())
    await asyncio.sleep(0.01)  # the read has found the old key
    settings.key = "sk-second"
    cache.invalidate()  # the broker's notice of the change
    settings.release.set()
    assert (await reading).openai_api_key == "sk-first"
    assert (await cache()).openai_api_key == "sk-second"
    assert settings.reads == 2


async def test_values_are_read_again_after_the_ttl() -> None:
    settings = Settings()
    cache = CredentialCache(Credentials(), settings.load, ttl_seconds=0.05)
    assert (await cache()).openai_api_key == "sk-first"
    settings.key = "sk-second"
    assert (await cache()).openai_api_key == "sk-first"
    await asyncio.sleep(0.06)
    assert (await cache()).openai_api_key == "sk-second"
    assert settings.reads == 2
