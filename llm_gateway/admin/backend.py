"""omnimap-back, as the admin UI sees it: the login endpoint and the user list.

Login posts ``{username, password}`` as JSON to ``BACKEND_AUTH_URL``; omnimap-back answers
200 ``{refresh, access, user_id, is_staff}`` or 401 ``{"detail": ...}``. The user list
(``BACKEND_USERS_URL``, staff token) is paginated ``{count, next, previous, results}``; it only
decorates pages with usernames, so any failure there leaves plain ids, never an error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger("llm_gateway.admin")

USERS_CACHE_SECONDS = 60.0
USERS_MAX_PAGES = 50
"""At 200 users a page, 10,000 users; past that, pages show ids for the rest."""


class LoginRefused(Exception):
    """The login did not succeed; ``str(exc)`` is what the form shows."""


@dataclass(frozen=True, slots=True)
class BackendLogin:
    access: str
    user_id: int | None
    is_staff: bool


@dataclass(frozen=True, slots=True)
class BackendUser:
    id: int
    username: str
    email: str
    is_active: bool
    is_staff: bool


class Backend:
    """An HTTP client of omnimap-back with the configured URLs and timeout."""

    def __init__(self, auth_url: str, users_url: str, timeout: float) -> None:
        self._auth_url = auth_url
        self._users_url = users_url
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._users: dict[int, BackendUser] = {}
        self._users_at = float("-inf")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def login(self, username: str, password: str) -> BackendLogin:
        """Credentials checked by omnimap-back; raises LoginRefused with a form message."""
        try:
            response = await self._client.post(
                self._auth_url, json={"username": username, "password": password}
            )
        except httpx.TimeoutException:
            raise LoginRefused(
                "The sign-in service did not answer in time. Try again in a moment."
            ) from None
        except httpx.HTTPError as exc:
            logger.warning("admin login: backend unreachable: %s", exc)
            raise LoginRefused(
                "The sign-in service cannot be reached. Try again in a moment."
            ) from None
        if response.status_code in (400, 401, 403):
            raise LoginRefused("Wrong username or password.")
        if response.status_code != 200:
            logger.warning("admin login: backend answered %s", response.status_code)
            raise LoginRefused("The sign-in service failed. Try again in a moment.")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("access"), str):
            logger.warning("admin login: backend answered 200 without an access token")
            raise LoginRefused("The sign-in service failed. Try again in a moment.")
        user_id = body.get("user_id")
        return BackendLogin(
            access=body["access"],
            user_id=user_id if isinstance(user_id, int) else None,
            is_staff=body.get("is_staff") is True,
        )

    async def users(self, token: str) -> dict[int, BackendUser]:
        """Every user omnimap-back lists (cached a minute); ``{}`` when it does not answer."""
        if time.monotonic() - self._users_at < USERS_CACHE_SECONDS:
            return self._users
        found: dict[int, BackendUser] = {}
        url: str | None = self._users_url
        try:
            for _ in range(USERS_MAX_PAGES):
                if url is None:
                    break
                response = await self._client.get(url, headers={"Authorization": f"Bearer {token}"})
                response.raise_for_status()
                page = response.json()
                for item in page.get("results") or []:
                    user = _user_of(item)
                    if user is not None:
                        found[user.id] = user
                url = page.get("next") if isinstance(page.get("next"), str) else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            logger.info("admin: user list unavailable (%s); showing ids", exc)
            if not found:
                # Retry soon, not on every page view while the backend is down.
                self._users_at = time.monotonic() - USERS_CACHE_SECONDS + 10
                return self._users
        self._users = found
        self._users_at = time.monotonic()
        return found


def _user_of(item: Any) -> BackendUser | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        return None
    return BackendUser(
        id=item["id"],
        username=str(item.get("username") or ""),
        email=str(item.get("email") or ""),
        is_active=item.get("is_active") is not False,
        is_staff=item.get("is_staff") is True,
    )
