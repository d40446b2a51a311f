"""Models' prompt-cache weights and prices: seeded from each provider's published ratios,
derived the same way for a new model unless staff give them, editable in GraphQL and the
admin UI, and what the next answer is charged at."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from llm_gateway.services.catalog import listing as catalog
from tests.admin_support import AdminClient
from tests.catalog.test_admin import STAFF_ID, audit_rows, mock_model, refused, staff
from tests.chat_support import finished, new_dialog, send
from tests.support import GraphQLClient

CACHE_FIELDS = "cacheReadWeight cacheWriteWeight cacheReadPricePer1k cacheWritePricePer1k"
CREATE = f"""mutation($input: CreateModelInput!) {{
  createModel(input: $input) {{ name {CACHE_FIELDS} }}
}}"""
UPDATE = f"""mutation($input: UpdateModelInput!) {{
  updateModel(input: $input) {{ name {CACHE_FIELDS} }}
}}"""


def cache_values(model: dict[str, Any]) -> tuple[Decimal, ...]:
    """(read weight, write weight, read price, write price) of a GraphQL model."""
    return tuple(Decimal(model[field]) for field in CACHE_FIELDS.split())


async def test_seeded_models_have_their_providers_published_ratios(gql: GraphQLClient) -> None:
    result = await gql(f"{{ models {{ name {CACHE_FIELDS} }} }}", user=STAFF_ID, staff=True)
    seeded = {m["name"]: cache_values(m) for m in result.ok()["models"]}
    d = Decimal
    anthropic = (d("0.1"), d("1.25"))  # reads 0.1x, writes 1.25x the prompt's weight (1)
    openai = (d("0.1"), d(1))  # the GPT-5.4 family: reads 0.1x, no write premium
    assert seeded == {
        # The previous deployment's names, now current models (migration 0008).
        "claude-3-opus": (*anthropic, d("0.0005"), d("0.00625")),
        "claude-3-sonnet": (*anthropic, d("0.0003"), d("0.00375")),
        "gpt-4-turbo": (*openai, d("0.00025"), d("0.0025")),
        "gpt-3.5-turbo": (*openai, d("0.000075"), d("0.00075")),
        "claude-opus-4-8": (*anthropic, d("0.0005"), d("0.00625")),
        "claude-sonnet-4-6": (*anthropic, d("0.0003"), d("0.00375")),
        "claude-haiku-4-5": (*anthropic, d("0.0001"), d("0.00125")),
        "gpt-5.5": (*openai, d("0.0005"), d("0.005")),
        "gpt-5.4": (*openai, d("0.00025"), d("0.0025")),
        "gpt-5.4-mini": (*openai, d("0.000075"), d("0.00075")),
        # The rest: 1x both.
        "mock": (d(1), d(1), d(0), d(0)),
        "GigaChat": (d(1), d(1), d(0), d(0)),
        "GigaChat-Pro": (d(1), d(1), d(0), d(0)),
        "GigaChat-Max": (d(1), d(1), d(0), d(0)),
    }


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        # 0.3 and 0.000125 times the ratio, rounded up to 4 and 6 places.
        ("ANTHROPIC", ("0.03", "0.375", "0.000013", "0.000157")),
        ("OPENAI", ("0.03", "0.3", "0.000013", "0.000125")),
        ("MOCK", ("0.3", "0.3", "0.000125", "0.000125")),
        ("GIGACHAT", ("0.3", "0.3", "0.000125", "0.000125")),
    ],
)
async def test_a_new_model_without_cache_prices_gets_its_providers_ratio(
    gql: GraphQLClient, provider: str, expected: tuple[str, ...]
) -> None:
    model = mock_model(provider=provider, promptWeight="0.3", promptPricePer1k="0.000125")
    created = (await staff(gql, CREATE, {"input": model})).ok()["createModel"]
    assert cache_values(created) == tuple(Decimal(value) for value in expected)


async def test_staff_set_and_edit_cache_prices_and_the_next_answer_is_charged_at_them(
    gql: GraphQLClient, app: Any
) -> None:
    fields = {
        "cacheReadWeight": "0.25",
        "cacheWriteWeight": "2",
        "cacheReadPricePer1k": "0.0001",
        "cacheWritePricePer1k": "0.0009",
    }
    created = await staff(gql, CREATE, {"input": mock_model(**fields)})
    values = cache_values(created.ok()["createModel"])
    assert values == (Decimal("0.25"), Decimal(2), Decimal("0.0001"), Decimal("0.0009"))

    edit = {"name": "mock-plus", "cacheReadWeight": "0.5", "cacheWritePricePer1k": "0.001"}
    updated = cache_values((await staff(gql, UPDATE, {"input": edit})).ok()["updateModel"])
    assert updated == (Decimal("0.5"), Decimal(2), Decimal("0.0001"), Decimal("0.001"))
    change = (await audit_rows(app))[-1]
    assert change.action == "model.update"
    assert change.after == {"cache_read_weight": "0.5000", "cache_write_price_per_1k": "0.001000"}

    # The mock reports no cache: its answers are charged at the prompt's weight as before.
    dialog_id = await new_dialog(gql, model="mock-plus")
    sent = (await send(gql, dialog_id, "hi")).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert (answer.cache_read_tokens, answer.cache_write_tokens) == (0, 0)
    assert answer.charged_tokens == (answer.prompt_tokens or 0) + (answer.completion_tokens or 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cacheReadWeight": "-0.1"}, "cacheReadWeight"),
        ({"cacheWriteWeight": "0.00001"}, "cacheWriteWeight"),
        ({"cacheReadPricePer1k": "0.0000001"}, "cacheReadPricePer1k"),
        ({"cacheWritePricePer1k": "1000000"}, "cacheWritePricePer1k"),
    ],
)
async def test_bad_cache_prices_are_refused_naming_the_field(
    gql: GraphQLClient, fields: dict[str, str], field: str
) -> None:
    result = await staff(gql, CREATE, {"input": mock_model(**fields)})
    assert refused(result) == ("VALIDATION_FAILED", field)


async def test_a_user_cannot_edit_cache_prices(gql: GraphQLClient) -> None:
    result = await gql(UPDATE, {"input": {"name": "mock", "cacheReadWeight": "0"}}, user=7)
    assert result.codes == ["FORBIDDEN"]


async def test_the_admin_form_derives_blank_cache_prices_and_keeps_given_ones(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    form = {
        "name": "claude-haiku",
        "provider": "anthropic",
        "upstream_model": "claude-3-haiku-20240307",
        "context_window": "200000",
        "max_output_tokens": "4096",
        "prompt_price_per_1k": "0.00025",
        "completion_price_per_1k": "0.00125",
        "prompt_weight": "1",
        "completion_weight": "1",
        "enabled": "on",
    }
    response = await staff_admin.submit("/admin/models/new", "/admin/models/new", **form)
    assert response.status_code == 303
    async with admin_app.state.services.db.read() as session:
        row = await catalog.get_model(session, "claude-haiku", include_disabled=True)
    assert (row.cache_read_weight, row.cache_write_weight) == (Decimal("0.1"), Decimal("1.25"))
    assert (row.cache_read_price_per_1k, row.cache_write_price_per_1k) == (
        Decimal("0.000025"),
        Decimal("0.000313"),  # 0.0003125, rounded up
    )
    page = await staff_admin.get("/admin/models/claude-haiku/edit")
    assert 'name="cache_read_weight"' in page.text

    del form["name"]
    edited = {**form, "cache_read_weight": "0.2", "cache_write_price_per_1k": "0.0004"}
    response = await staff_admin.submit(
        "/admin/models/claude-haiku/edit", "/admin/models/claude-haiku/edit", **edited
    )
    assert response.status_code == 303
    async with admin_app.state.services.db.read() as session:
        row = await catalog.get_model(session, "claude-haiku", include_disabled=True)
    assert (row.cache_read_weight, row.cache_write_price_per_1k) == (
        Decimal("0.2"),
        Decimal("0.0004"),
    )
