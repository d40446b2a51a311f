"""Small helpers shared by tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from llm_gateway.auth import mint_access_token

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def token(user_id: int = 1, *, staff: bool = False, **kwargs: Any) -> str:
    """An access token shaped like omnimap-back's, signed with the tests' secret."""
    return mint_access_token(TEST_SECRET, user_id, is_staff=staff, **kwargs)


@dataclass
class Result:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    @property
    def codes(self) -> list[str | None]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    def ok(self) -> Any:
        """The data, after asserting there were no errors."""
        assert not self.errors, self.errors
        return self.data


class GraphQLClient:
    """Posts GraphQL over HTTP like a frontend would."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        user: int | None = 1,
        staff: bool = False,
        auth: str | None = None,
    ) -> Result:
        headers = {}
        if auth is not None:
            headers["Authorization"] = auth
        elif user is not None:
            headers["Authorization"] = f"Bearer {token(user, staff=staff)}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return Result(response.status_code, response.json())
