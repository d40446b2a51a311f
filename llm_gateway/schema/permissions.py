"""Field permissions. Every root field declares one; a test walks the schema to prove it."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from llm_gateway.errors import Forbidden
from llm_gateway.schema.context import Info


class IsAuthenticated(BasePermission):
    """Any valid access token."""

    message = "Authentication required."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        _ = info.context.principal  # raises UNAUTHENTICATED with the precise reason
        return True


class IsStaff(BasePermission):
    """An access token whose ``is_staff`` claim is true."""

    message = "Staff only."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not info.context.principal.is_staff:
            raise Forbidden("This operation is for staff only.")
        return True
