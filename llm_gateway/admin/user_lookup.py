"""How the admin pages name users: ids typed or in a path, username matches, labels.

Shared by the users, transactions, dialogs, audit and API-key pages.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from llm_gateway.admin.backend import BackendUser
from llm_gateway.admin.web import services_of
from llm_gateway.bounds import MAX_SAFE_INTEGER

PAGE_SIZE = 25
MAX_NAME_MATCHES = 50
"""A username search shows at most this many users (no pages: refine the search)."""
MAX_USER_ID = MAX_SAFE_INTEGER  # the largest id a token may carry (llm_gateway.auth)


def page_size(request: Request) -> int:
    return min(PAGE_SIZE, services_of(request).settings.graphql_max_page_size)


def user_id_in(raw: str) -> int | None:
    """A user id typed or in a path, or None when ``raw`` is not one."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= MAX_USER_ID:
        return int(raw)
    return None


def matching_users(users: Mapping[int, BackendUser], text: str) -> list[int]:
    """Ids of omnimap-back users whose username or email contains ``text`` (any case)."""
    needle = text.casefold()
    return sorted(
        user_id
        for user_id, user in users.items()
        if needle in user.username.casefold() or needle in user.email.casefold()
    )


def user_label(user_id: int, names: Mapping[int, str]) -> str:
    name = names.get(user_id)
    return f"{name} (#{user_id})" if name else f"user #{user_id}"


def detail_path(user_id: int) -> str:
    return f"/admin/users/{user_id}"
