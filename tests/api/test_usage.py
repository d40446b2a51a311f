"""API traffic counts in the staff's usage statistics and dashboard, with its source."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.api_support import api_requests, new_key
from tests.chat_support import finished, new_dialog, send
from tests.support import GraphQLClient

USAGE = """query($from: Date!, $to: Date!, $groupBy: UsageGroupBy!, $source: UsageSource) {
  usageStats(from: $from, to: $to, groupBy: $groupBy, source: $source) {
    rows { key requests chargedTokens errors }
    total { requests chargedTokens }
  }
}"""


async def test_usage_stats_count_chat_and_api_by_source(
    app: Any, http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    dialog_id = await new_dialog(gql)
    sent = (await send(gql, dialog_id, "From the chat")).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    key = await new_key(app)
    for _ in range(2):
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "mock", "messages": [{"role": "user", "content": "From the API"}]},
        )
        assert response.status_code == 200, response.text
    api_charged = sum(r.charged_tokens or 0 for r in await api_requests(app))
    today = dt.datetime.now(dt.UTC).date().isoformat()
    window = {"from": today, "to": today}
    by_source = (await gql(USAGE, {**window, "groupBy": "SOURCE"}, user=1, staff=True)).ok()[
        "usageStats"
    ]
    rows = {row["key"]: row for row in by_source["rows"]}
    assert rows["api"]["requests"] == 2
    assert rows["api"]["chargedTokens"] == api_charged
    assert rows["chat"]["requests"] == 1
    assert rows["chat"]["chargedTokens"] == answer.charged_tokens
    assert by_source["total"]["requests"] == 3
    only_api = (
        await gql(USAGE, {**window, "groupBy": "MODEL", "source": "API"}, user=1, staff=True)
    ).ok()["usageStats"]
    assert only_api["rows"] == [
        {"key": "mock", "requests": 2, "chargedTokens": api_charged, "errors": 0}
    ]
