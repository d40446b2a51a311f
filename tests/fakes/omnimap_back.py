"""A fake omnimap-back: its login endpoint and its staff user list, on 127.0.0.1.

Login answers as simplejwt does: 200 ``{refresh, access, user_id, is_staff}`` with tokens
signed by the tests' secret, 401 ``{"detail": ...}`` for wrong credentials, 400 for a
missing field. ``down`` makes every endpoint answer 503; ``delay`` holds every answer back
(a slow backend). The user list needs a staff token and pages ``page_size`` users at a time,
``{count, next, previous, results}`` like DRF's PageNumberPagination.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llm_gateway.auth import mint_access_token
from tests.live import LiveServer, serve_asgi
from tests.support import TEST_SECRET


@dataclass
class Account:
    user_id: int
    username: str
    password: str
    is_staff: bool = False
    email: str = ""


@dataclass
class OmnimapBack:
    accounts: list[Account] = field(default_factory=list)
    down: bool = False
    delay: float = 0.0
    page_size: int = 200
    list_down: bool = False
    logins: list[str] = field(default_factory=list)
    server: LiveServer | None = None

    def add(self, user_id: int, username: str, password: str, *, staff: bool = False) -> Account:
        account = Account(user_id, username, password, staff, f"{username}@example.test")
        self.accounts.append(account)
        return account

    @property
    def login_url(self) -> str:
        assert self.server is not None
        return f"{self.server.base_url}/api/v1/login/"

    @property
    def users_url(self) -> str:
        assert self.server is not None
        return f"{self.server.base_url}/api/v1/users/"

    async def _login(self, request: Request) -> Response:
        await asyncio.sleep(self.delay)
        if self.down:
            return JSONResponse({"detail": "Service unavailable"}, status_code=503)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"detail": "JSON parse error"}, status_code=400)
        missing = {
            k: ["This field is required."] for k in ("username", "password") if not body.get(k)
        }
        if missing:
            return JSONResponse(missing, status_code=400)
        self.logins.append(body["username"])
        for account in self.accounts:
            if account.username == body["username"] and account.password == body["password"]:
                access = mint_access_token(TEST_SECRET, account.user_id, is_staff=account.is_staff)
                return JSONResponse(
                    {
                        "refresh": access + ".refresh",
                        "access": access,
                        "user_id": account.user_id,
                        "is_staff": account.is_staff,
                    }
                )
        return JSONResponse(
            {"detail": "No active account found with the given credentials"}, status_code=401
        )

    async def _users(self, request: Request) -> Response:
        await asyncio.sleep(self.delay)
        if self.down or self.list_down:
            return JSONResponse({"detail": "Service unavailable"}, status_code=503)
        header = request.headers.get("authorization", "")
        try:
            claims = jwt.decode(header.removeprefix("Bearer "), TEST_SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            return JSONResponse({"detail": "Invalid token"}, status_code=401)
        if claims.get("is_staff") is not True:
            return JSONResponse({"detail": "Admin access required"}, status_code=403)
        page = int(request.query_params.get("page", "1"))
        start = (page - 1) * self.page_size
        chunk = self.accounts[start : start + self.page_size]
        base = str(request.url.remove_query_params("page"))
        more = start + self.page_size < len(self.accounts)
        return JSONResponse(
            {
                "count": len(self.accounts),
                "next": f"{base}?page={page + 1}" if more else None,
                "previous": f"{base}?page={page - 1}" if page > 1 else None,
                "results": [
                    {
                        "id": a.user_id,
                        "username": a.username,
                        "email": a.email,
                        "is_active": True,
                        "is_staff": a.is_staff,
                        "date_joined": "2026-01-01T00:00:00Z",
                    }
                    for a in chunk
                ],
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/login/", self._login, methods=["POST"]),
                Route("/api/v1/users/", self._users, methods=["GET"]),
            ]
        )


@asynccontextmanager
async def omnimap_back() -> AsyncIterator[OmnimapBack]:
    fake = OmnimapBack()
    async with serve_asgi(fake.app()) as server:
        fake.server = server
        yield fake
