"""The model registry and the agent presets staff curate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from llm_gateway.db.base import Base, Timestamps, one_of
from llm_gateway.enums import Provider

Price = Numeric(12, 6)
Weight = Numeric(10, 4)


def _as(column: str) -> Any:
    """A column default copying ``column`` of the same row: a cache weight or price left
    out is the prompt's (no discount). ``models_admin.create_model`` applies the
    providers' published ratios instead (README: prompt caching)."""

    def default(context: DefaultExecutionContext) -> Any:
        return context.get_current_parameters()[column]  # type: ignore[no-untyped-call]

    return default


class Model(Timestamps, Base):
    """A model users may chat with: its public name, upstream id, limits and prices."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint(one_of("provider", Provider), name="provider"),
        CheckConstraint("context_window > 0", name="context_window_positive"),
        CheckConstraint(
            "max_output_tokens > 0 AND max_output_tokens <= context_window",
            name="max_output_tokens_fits",
        ),
        CheckConstraint("prompt_price_per_1k >= 0 AND completion_price_per_1k >= 0", name="prices"),
        CheckConstraint("prompt_weight >= 0 AND completion_weight >= 0", name="weights"),
        CheckConstraint(
            "cache_read_price_per_1k >= 0 AND cache_write_price_per_1k >= 0", name="cache_prices"
        ),
        CheckConstraint("cache_read_weight >= 0 AND cache_write_weight >= 0", name="cache_weights"),
        # At most one default model.
        Index(
            "uq_models_single_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    upstream_model: Mapped[str] = mapped_column(String(200))
    context_window: Mapped[int]
    max_output_tokens: Mapped[int]
    prompt_price_per_1k: Mapped[Decimal] = mapped_column(Price, default=Decimal(0))
    completion_price_per_1k: Mapped[Decimal] = mapped_column(Price, default=Decimal(0))
    prompt_weight: Mapped[Decimal] = mapped_column(Weight, default=Decimal(1))
    completion_weight: Mapped[Decimal] = mapped_column(Weight, default=Decimal(1))
    # Input read from / written to the provider's prompt cache (README: prompt caching).
    cache_read_price_per_1k: Mapped[Decimal] = mapped_column(
        Price, default=_as("prompt_price_per_1k"), server_default=text("0")
    )
    cache_write_price_per_1k: Mapped[Decimal] = mapped_column(
        Price, default=_as("prompt_price_per_1k"), server_default=text("0")
    )
    cache_read_weight: Mapped[Decimal] = mapped_column(
        Weight, default=_as("prompt_weight"), server_default=text("1")
    )
    cache_write_weight: Mapped[Decimal] = mapped_column(
        Weight, default=_as("prompt_weight"), server_default=text("1")
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    fallback_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL")
    )


class Agent(Timestamps, Base):
    """A preset a dialog can start from: instructions, model and generation params."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    temperature: Mapped[float | None]
    top_p: Mapped[float | None]
    max_tokens: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(default=True)
