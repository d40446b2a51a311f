"""Access tokens from omnimap-back: verification and, for development, minting.

omnimap-back signs with djangorestframework-simplejwt: HS256 over Django's SECRET_KEY,
claims ``token_type``, ``exp``, ``iat``, ``jti``, ``user_id`` and a custom ``is_staff``.
Only access tokens are accepted; every other token gets the same typed error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from llm_gateway.bounds import MAX_SAFE_INTEGER
from llm_gateway.errors import Unauthenticated

BEARER = "bearer"
MAX_USER_ID = MAX_SAFE_INTEGER
"""Ids are BIGINT in the database but sent to clients as SafeInt: a larger claim is refused
here, rather than letting every answer that names the user fail."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the omnimap user id and whether they are staff."""

    user_id: int
    is_staff: bool
    token: str
    expires_at: float = float("inf")
    """The token's ``exp`` (epoch seconds, leeway included)."""

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires_at


class TokenVerifier:
    """Checks access tokens against the configured secret and algorithm allow-list."""

    def __init__(self, secret: str, algorithms: Sequence[str], leeway_seconds: int) -> None:
        self._secret = secret
        self._algorithms = list(algorithms)
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid access token, else raise Unauthenticated."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("Malformed token.") from None
        if header.get("alg") not in self._algorithms:
            raise Unauthenticated("Token algorithm is not allowed.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=self._algorithms,
                leeway=self._leeway,
                options={"require": ["exp", "user_id", "token_type"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("Token is not yet valid.") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("Invalid token signature.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"Token is missing the {exc.claim!r} claim.") from None
        except jwt.PyJWTError:
            raise Unauthenticated("Invalid token.") from None
        if claims["token_type"] != "access":
            raise Unauthenticated("Only access tokens are accepted.")
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > time.time() + self._leeway:
            raise Unauthenticated("Token is not yet valid.")
        return Principal(
            user_id=_user_id(claims["user_id"]),
            is_staff=claims.get("is_staff") is True,
            token=token,
            expires_at=float(claims["exp"]) + self._leeway,
        )

    def verify_header(self, authorization: str | None) -> Principal | None:
        """Verify an ``Authorization`` header value; ``None`` when there is none."""
        if authorization is None or not authorization.strip():
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != BEARER or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <access token>'.")
        return self.verify(token.strip())

    def verify_connection_params(self, params: Mapping[str, Any] | None) -> Principal:
        """Verify a websocket ``connection_init`` payload (``Authorization`` or ``token``)."""
        params = params or {}
        header = params.get("Authorization", params.get("authorization"))
        if isinstance(header, str):
            principal = self.verify_header(header)
            if principal is not None:
                return principal
        token = params.get("token")
        if isinstance(token, str) and token.strip():
            return self.verify(token.strip().removeprefix("Bearer ").strip())
        raise Unauthenticated("connection_init carries no access token.")


def _user_id(value: object) -> int:
    # simplejwt writes an int; older versions of some backends wrote a decimal string.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_USER_ID:
        return value
    raise Unauthenticated("Token has an invalid 'user_id' claim.")


def mint_access_token(
    secret: str,
    user_id: int,
    *,
    is_staff: bool = False,
    lifetime_seconds: int = 24 * 3600,
    algorithm: str = "HS256",
) -> str:
    """Mint an access token shaped like simplejwt's (development and tests only)."""
    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + lifetime_seconds,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "user_id": user_id,
        "is_staff": is_staff,
    }
    return jwt.encode(claims, secret, algorithm=algorithm)
