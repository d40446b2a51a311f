"""Gateway API keys (README: API keys): issued to a user, shown once, stored as a hash.

``records`` creates, lists and revokes them; ``authenticator`` tells who a key acts for
(cached briefly, revoked on every instance at once); ``last_used`` writes when each key
was last used without a write per request. Callers import from here.
"""

from llm_gateway.services.money.api_keys.authenticator import (
    EXPIRED_KEY,
    REVOKED_KEY,
    UNKNOWN_KEY,
    ApiKeyAuthenticator,
    ApiKeyPrincipal,
)
from llm_gateway.services.money.api_keys.records import (
    KEY_PREFIX,
    MAX_LIVE_KEYS,
    all_api_keys,
    create_api_key,
    get_api_key,
    hash_key,
    is_api_key,
    list_api_keys,
    revoke_api_key,
)

__all__ = [
    "EXPIRED_KEY",
    "KEY_PREFIX",
    "MAX_LIVE_KEYS",
    "REVOKED_KEY",
    "UNKNOWN_KEY",
    "ApiKeyAuthenticator",
    "ApiKeyPrincipal",
    "all_api_keys",
    "create_api_key",
    "get_api_key",
    "hash_key",
    "is_api_key",
    "list_api_keys",
    "revoke_api_key",
]
