"""Runtime settings as staff see them: secrets always masked."""

from __future__ import annotations

import datetime as dt

import strawberry

from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.staff.runtime_settings import ConfigView


@strawberry.type
class ConfigEntry:
    key: str
    value: str = strawberry.field(description="Masked (e.g. sk-…9f2c) when the entry is secret.")
    is_secret: bool
    description: str
    updated_by: SafeInt | None
    updated_at: dt.datetime

    @staticmethod
    def from_view(view: ConfigView) -> ConfigEntry:
        return ConfigEntry(
            key=view.key,
            value=view.value,
            is_secret=view.is_secret,
            description=view.description,
            updated_by=view.updated_by,
            updated_at=view.updated_at,
        )
