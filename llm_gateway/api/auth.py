"""Who calls ``/v1``: ``Authorization: Bearer`` with a gateway API key (``sk-lg-…``) or an
omnimap access token, under the same rules as GraphQL."""

from __future__ import annotations

from starlette.requests import Request

from llm_gateway.errors import Unauthenticated
from llm_gateway.observability.logs import bind_user
from llm_gateway.services.chat.completions.planning import ApiCaller
from llm_gateway.services.container import Services
from llm_gateway.services.money.api_keys import is_api_key

MISSING = (
    "You didn't provide an API key. Send 'Authorization: Bearer <key>' with a gateway "
    "API key or an access token."
)


async def api_caller(request: Request, services: Services) -> ApiCaller:
    header = request.headers.get("authorization", "").strip()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(MISSING)
    if is_api_key(token):
        key = await services.api_keys.authenticate(token)
        bind_user(key.user_id)
        return ApiCaller(
            user_id=key.user_id,
            key_id=key.key_id,
            models=key.models,
            daily_token_limit=key.daily_token_limit,
        )
    principal = services.verifier.verify(token)
    bind_user(principal.user_id)
    return ApiCaller(user_id=principal.user_id)
