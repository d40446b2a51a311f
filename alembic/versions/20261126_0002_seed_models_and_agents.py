"""seed models and agents

The four models of the previous service (with the dated Anthropic ids the real API
expects), GigaChat models disabled until a key is configured, the built-in ``mock``
model as the default so a fresh install chats without any key, and a few agents.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:30:00
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

models = sa.table(
    "models",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("display_name", sa.String),
    sa.column("provider", sa.String),
    sa.column("upstream_model", sa.String),
    sa.column("context_window", sa.Integer),
    sa.column("max_output_tokens", sa.Integer),
    sa.column("prompt_price_per_1k", sa.Numeric(12, 6)),
    sa.column("completion_price_per_1k", sa.Numeric(12, 6)),
    sa.column("prompt_weight", sa.Numeric(10, 4)),
    sa.column("completion_weight", sa.Numeric(10, 4)),
    sa.column("enabled", sa.Boolean),
    sa.column("is_default", sa.Boolean),
)
agents = sa.table(
    "agents",
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("system_prompt", sa.Text),
    sa.column("model_id", sa.Integer),
    sa.column("temperature", sa.Double),
    sa.column("top_p", sa.Double),
    sa.column("max_tokens", sa.Integer),
    sa.column("enabled", sa.Boolean),
)


def _model(
    name: str,
    display_name: str,
    provider: str,
    upstream: str,
    context_window: int,
    max_output: int,
    prompt_price: str,
    completion_price: str,
    *,
    enabled: bool = True,
    is_default: bool = False,
) -> dict[str, object]:
    return {
        "name": name,
        "display_name": display_name,
        "provider": provider,
        "upstream_model": upstream,
        "context_window": context_window,
        "max_output_tokens": max_output,
        "prompt_price_per_1k": Decimal(prompt_price),
        "completion_price_per_1k": Decimal(completion_price),
        "prompt_weight": Decimal(1),
        "completion_weight": Decimal(1),
        "enabled": enabled,
        "is_default": is_default,
    }


SEED_MODELS = [
    _model("mock", "Mock (built-in, no key)", "mock", "mock-echo", 32_768, 1_024, "0", "0",
           is_default=True),
    _model("gpt-4-turbo", "GPT-4 Turbo", "openai", "gpt-4-turbo", 128_000, 4_096,
           "0.01", "0.03"),
    _model("gpt-3.5-turbo", "GPT-3.5 Turbo", "openai", "gpt-3.5-turbo", 16_385, 4_096,
           "0.0005", "0.0015"),
    _model("claude-3-opus", "Claude 3 Opus", "anthropic", "claude-3-opus-20240229", 200_000,
           4_096, "0.015", "0.075"),
    _model("claude-3-sonnet", "Claude 3 Sonnet", "anthropic", "claude-3-sonnet-20240229",
           200_000, 4_096, "0.003", "0.015"),
    _model("GigaChat", "GigaChat Lite", "gigachat", "GigaChat", 32_768, 4_096, "0", "0",
           enabled=False),
    _model("GigaChat-Pro", "GigaChat Pro", "gigachat", "GigaChat-Pro", 32_768, 4_096, "0", "0",
           enabled=False),
    _model("GigaChat-Max", "GigaChat Max", "gigachat", "GigaChat-Max", 32_768, 4_096, "0", "0",
           enabled=False),
]

SEED_AGENTS = [
    {
        "name": "assistant",
        "description": "A balanced, helpful assistant for everyday questions.",
        "system_prompt": "You are a helpful assistant. Answer clearly and concisely, and say "
        "so when you are not sure.",
        "temperature": 0.7,
        "top_p": None,
        "max_tokens": None,
    },
    {
        "name": "code-assistant",
        "description": "Precise help with programming: explanations, reviews and code.",
        "system_prompt": "You are an expert software engineer. Give correct, idiomatic code "
        "with short explanations. Point out bugs and edge cases.",
        "temperature": 0.2,
        "top_p": None,
        "max_tokens": 4_096,
    },
    {
        "name": "creative-writer",
        "description": "Stories, poems and ideas with a livelier voice.",
        "system_prompt": "You are a creative writer. Be vivid and original while following "
        "the user's brief.",
        "temperature": 0.9,
        "top_p": 0.95,
        "max_tokens": None,
    },
    {
        "name": "translator",
        "description": "Translates text faithfully between languages.",
        "system_prompt": "You are a professional translator. Translate the user's text into "
        "the language they ask for (English if they do not say), keeping meaning, tone and "
        "formatting. Reply with the translation only.",
        "temperature": 0.3,
        "top_p": None,
        "max_tokens": None,
    },
]


def upgrade() -> None:
    op.bulk_insert(models, SEED_MODELS)
    op.bulk_insert(
        agents,
        [{**agent, "model_id": None, "enabled": True} for agent in SEED_AGENTS],
    )


def downgrade() -> None:
    op.execute(agents.delete().where(agents.c.name.in_([a["name"] for a in SEED_AGENTS])))
    op.execute(models.delete().where(models.c.name.in_([m["name"] for m in SEED_MODELS])))
