"""GraphQL declarations. ``llm_gateway.schema.schema`` is the schema with default limits."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Imported lazily so that the schema's type modules can import each other freely.
    if name == "schema":
        from llm_gateway.schema.build import schema

        return schema
    raise AttributeError(name)
