"""Authentication: which tokens open the API, over HTTP and over the websocket.

Tokens are forged by hand here (header, claims, HMAC) rather than with the code under
test, so a bug in the minting helper cannot hide a bug in verification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from llm_gateway.auth import TokenVerifier, mint_access_token
from llm_gateway.errors import Unauthenticated
from llm_gateway.settings import Settings
from tests.live import LiveServer, graphql_socket, live_server
from tests.support import TEST_SECRET, GraphQLClient, Result, token

ME = "{ me { userId isStaff } }"
LEEWAY = 30  # the default JWT_LEEWAY_SECONDS
HASHES: dict[str, Callable[[], Any]] = {
    "HS256": hashlib.sha256,
    "HS384": hashlib.sha384,
    "HS512": hashlib.sha512,
}


@pytest.fixture
def backend() -> str:
    """Verification does not touch the database's dialect: run these once, on SQLite."""
    return "sqlite"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def forge(
    claims: dict[str, Any],
    *,
    alg: str = "HS256",
    secret: str = TEST_SECRET,
    header: dict[str, Any] | None = None,
) -> str:
    """A JWT with exactly these claims, HMAC-signed with ``secret`` (``alg: none``: unsigned)."""
    head = _segment(header if header is not None else {"alg": alg, "typ": "JWT"})
    body = _segment(claims)
    signing_input = f"{head}.{body}".encode("ascii")
    if alg == "none":
        return f"{head}.{body}."
    digest = HASHES.get(alg, hashlib.sha256)
    signature = hmac.new(secret.encode(), signing_input, digest).digest()
    return f"{head}.{body}.{_b64(signature)}"


def claims(**changes: Any) -> dict[str, Any]:
    """simplejwt's access-token claims for user 42, with changes; ``None`` drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "token_type": "access",
        "exp": now + 300,
        "iat": now,
        "jti": "f1e2d3c4b5a6",
        "user_id": 42,
        "is_staff": False,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def assert_unauthenticated(result: Result, reason: str | None = None) -> None:
    """The failure a client can act on: HTTP 200, no data, one typed error, nothing leaked."""
    assert result.status == 200, result.body
    assert result.data is None, result.body
    assert result.codes == ["UNAUTHENTICATED"], result.body
    error = result.errors[0]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert error["path"] == ["me"]
    if reason is not None:
        assert reason.lower() in error["message"].lower(), error["message"]
    text = json.dumps(result.body)
    for leak in ("Traceback", 'File "', "jwt.", "PyJWT", "Unexpected error", TEST_SECRET):
        assert leak not in text, text


async def me_with(gql: GraphQLClient, authorization: str | None) -> Result:
    if authorization is None:
        return await gql(ME, user=None)
    return await gql(ME, auth=authorization)


# --- valid tokens -------------------------------------------------------------------


@pytest.mark.parametrize("staff", [False, True])
async def test_a_valid_access_token_identifies_the_caller(gql: GraphQLClient, staff: bool) -> None:
    result = await me_with(gql, f"Bearer {forge(claims(user_id=42, is_staff=staff))}")
    assert result.status == 200
    assert result.ok() == {"me": {"userId": 42, "isStaff": staff}}


async def test_tokens_from_the_minting_helper_are_accepted(gql: GraphQLClient) -> None:
    result = await me_with(gql, f"Bearer {token(9, staff=True)}")
    assert result.ok() == {"me": {"userId": 9, "isStaff": True}}


async def test_the_bearer_scheme_is_case_insensitive(gql: GraphQLClient) -> None:
    result = await me_with(gql, f"bearer {forge(claims(user_id=5))}")
    assert result.ok() == {"me": {"userId": 5, "isStaff": False}}


async def test_a_numeric_string_user_id_is_accepted_as_that_user(gql: GraphQLClient) -> None:
    # Decision: some backends wrote user_id as a decimal string; it names the same user.
    result = await me_with(gql, f"Bearer {forge(claims(user_id='42'))}")
    assert result.ok() == {"me": {"userId": 42, "isStaff": False}}


@pytest.mark.parametrize("value", ["true", "True", 1, "1", "yes", [True], {"staff": True}])
async def test_only_a_boolean_true_is_staff_claim_grants_staff(
    gql: GraphQLClient, value: object
) -> None:
    result = await me_with(gql, f"Bearer {forge(claims(is_staff=value))}")
    assert result.ok() == {"me": {"userId": 42, "isStaff": False}}


async def test_a_token_without_is_staff_is_not_staff(gql: GraphQLClient) -> None:
    result = await me_with(gql, f"Bearer {forge(claims(is_staff=None))}")
    assert result.ok() == {"me": {"userId": 42, "isStaff": False}}


async def test_expiry_and_issue_time_tolerate_the_clock_leeway(gql: GraphQLClient) -> None:
    now = int(time.time())
    just_expired = forge(claims(exp=now - LEEWAY // 3))
    slightly_early = forge(claims(iat=now + LEEWAY // 3, nbf=now + LEEWAY // 3))
    for jwt in (just_expired, slightly_early):
        assert (await me_with(gql, f"Bearer {jwt}")).ok()["me"]["userId"] == 42


# --- rejected tokens ------------------------------------------------------------------


async def test_an_expired_token_is_rejected(gql: GraphQLClient) -> None:
    expired = forge(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))
    assert_unauthenticated(await me_with(gql, f"Bearer {expired}"), "expired")


async def test_a_token_expired_just_beyond_the_leeway_is_rejected(gql: GraphQLClient) -> None:
    expired = forge(claims(exp=int(time.time()) - LEEWAY - 5))
    assert_unauthenticated(await me_with(gql, f"Bearer {expired}"), "expired")


@pytest.mark.parametrize("claim", ["iat", "nbf"])
async def test_a_token_not_yet_valid_is_rejected(gql: GraphQLClient, claim: str) -> None:
    future = int(time.time()) + 3600
    early = forge(claims(exp=future + 3600, **{claim: future}))
    assert_unauthenticated(await me_with(gql, f"Bearer {early}"), "not yet valid")


async def test_a_token_signed_with_another_secret_is_rejected(gql: GraphQLClient) -> None:
    other = forge(claims(), secret="another-secret-that-is-long-enough-for-hs256!!")
    assert_unauthenticated(await me_with(gql, f"Bearer {other}"), "signature")


async def test_a_token_whose_claims_were_changed_is_rejected(gql: GraphQLClient) -> None:
    head, _, signature = forge(claims(user_id=42)).split(".")
    tampered = f"{head}.{_segment(claims(user_id=1, is_staff=True))}.{signature}"
    assert_unauthenticated(await me_with(gql, f"Bearer {tampered}"), "signature")


async def test_an_unsigned_alg_none_token_is_rejected(gql: GraphQLClient) -> None:
    for alg in ("none", "None", "NONE"):
        unsigned = forge(claims(is_staff=True), header={"alg": alg, "typ": "JWT"}, alg="none")
        assert_unauthenticated(await me_with(gql, f"Bearer {unsigned}"), "algorithm")


async def test_hs512_signed_with_the_right_secret_is_rejected(gql: GraphQLClient) -> None:
    hs512 = forge(claims(), alg="HS512")
    assert_unauthenticated(await me_with(gql, f"Bearer {hs512}"), "algorithm")


async def test_an_rs256_header_over_an_hmac_signature_is_rejected(gql: GraphQLClient) -> None:
    # The classic key-confusion attack: the public key used as an HMAC secret.
    confused = forge(claims(), header={"alg": "RS256", "typ": "JWT"})
    assert_unauthenticated(await me_with(gql, f"Bearer {confused}"), "algorithm")


async def test_a_token_without_an_algorithm_is_rejected(gql: GraphQLClient) -> None:
    headless = forge(claims(), header={"typ": "JWT"})
    assert_unauthenticated(await me_with(gql, f"Bearer {headless}"), "algorithm")


@pytest.mark.parametrize("token_type", ["refresh", "sliding", "ACCESS", "", 1])
async def test_only_access_tokens_are_accepted(gql: GraphQLClient, token_type: object) -> None:
    other = forge(claims(token_type=token_type))
    assert_unauthenticated(await me_with(gql, f"Bearer {other}"), "access")


@pytest.mark.parametrize("claim", ["exp", "user_id", "token_type"])
async def test_a_token_missing_a_required_claim_is_rejected(gql: GraphQLClient, claim: str) -> None:
    missing = forge(claims(**{claim: None}))
    assert_unauthenticated(await me_with(gql, f"Bearer {missing}"), claim)


@pytest.mark.parametrize(
    "user_id",
    [
        "abc",
        "",
        "4 2",
        "-42",
        "+42",
        "4.2",
        "0x2a",
        "٤٢",  # Arabic-Indic digits: str.isdigit() says yes, omnimap has no such user
        0,
        -1,
        4.2,
        42.0,
        True,
        [42],
        {"id": 42},
    ],
)
async def test_a_user_id_that_is_not_a_positive_integer_is_rejected(
    gql: GraphQLClient, user_id: object
) -> None:
    bad = forge(claims(user_id=user_id))
    assert_unauthenticated(await me_with(gql, f"Bearer {bad}"), "user_id")


async def test_a_user_id_beyond_the_database_range_is_rejected(gql: GraphQLClient) -> None:
    # BigInteger columns: a larger id could never be stored, and must not become a 500.
    for user_id in (2**63, str(2**63), 10**40):
        bad = forge(claims(user_id=user_id))
        assert_unauthenticated(await me_with(gql, f"Bearer {bad}"), "user_id")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", "soon"),
        ("exp", ""),
        ("exp", [1]),
        ("exp", {"at": 1}),
        ("iat", "yesterday"),
        ("iat", [1]),
        ("nbf", "now"),
    ],
)
async def test_a_time_claim_that_is_not_a_timestamp_is_rejected(
    gql: GraphQLClient, claim: str, value: object
) -> None:
    bad = forge(claims(**{claim: value}))
    assert_unauthenticated(await me_with(gql, f"Bearer {bad}"))


@pytest.mark.parametrize(
    "garbage",
    [
        "garbage",
        "a.b.c",
        "...",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9.!!!.###",
        f"{_b64(b'not json')}.{_segment(claims())}.",
        f"{_segment(['HS256'])}.{_segment(claims())}.",
        f"{_segment({'alg': 'HS256'})}.{_b64(b'[1, 2]')}.",
        f"{_segment({'alg': 'HS256'})}.{_b64(b'not json')}.",
    ],
)
async def test_garbage_is_rejected(gql: GraphQLClient, garbage: str) -> None:
    assert_unauthenticated(await me_with(gql, f"Bearer {garbage}"))


async def test_a_payload_that_is_not_an_object_is_rejected_even_if_signed(
    gql: GraphQLClient,
) -> None:
    head = _segment({"alg": "HS256", "typ": "JWT"})
    body = _b64(b"[42]")
    signature = hmac.new(TEST_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    signed_list = f"{head}.{body}.{_b64(signature.digest())}"
    assert_unauthenticated(await me_with(gql, f"Bearer {signed_list}"))


@pytest.mark.parametrize("authorization", [None, "", "   "])
async def test_no_credentials_is_unauthenticated(
    gql: GraphQLClient, authorization: str | None
) -> None:
    assert_unauthenticated(await me_with(gql, authorization), "Authorization: Bearer")


@pytest.mark.parametrize(
    "template",
    ["Basic dXNlcjpwYXNz", "Token {t}", "JWT {t}", "{t}", "Bearer", "Bearer   ", "Bearer: {t}"],
)
async def test_a_non_bearer_authorization_is_rejected(gql: GraphQLClient, template: str) -> None:
    authorization = template.format(t=forge(claims()))
    assert_unauthenticated(await me_with(gql, authorization), "Bearer")


async def test_a_bearer_value_with_trailing_junk_is_rejected(gql: GraphQLClient) -> None:
    assert_unauthenticated(await me_with(gql, f"Bearer {forge(claims())} extra"))


async def test_a_rejected_request_returns_no_field_at_all(gql: GraphQLClient) -> None:
    expired = forge(claims(exp=int(time.time()) - 3600))
    result = await gql("{ models { name } me { userId } }", auth=f"Bearer {expired}")
    assert result.status == 200
    assert result.data is None
    assert result.errors
    assert set(result.codes) == {"UNAUTHENTICATED"}
    assert all("expired" in error["message"] for error in result.errors)


async def test_a_mutation_without_credentials_changes_nothing(gql: GraphQLClient) -> None:
    create = 'mutation { createDialog(input: {title: "x"}) { id } }'
    result = await gql(create, user=None)
    assert result.status == 200
    assert result.data is None
    assert result.codes == ["UNAUTHENTICATED"]
    listed = (await gql("{ dialogs { edges { node { id } } } }", user=1)).ok()
    assert listed["dialogs"]["edges"] == []


# --- the verifier itself --------------------------------------------------------------


def test_the_verifier_honours_a_configured_algorithm_list() -> None:
    verifier = TokenVerifier(TEST_SECRET * 2, ["HS512"], LEEWAY)
    principal = verifier.verify(forge(claims(user_id=3), alg="HS512", secret=TEST_SECRET * 2))
    assert (principal.user_id, principal.is_staff) == (3, False)
    with pytest.raises(Unauthenticated, match="algorithm"):
        verifier.verify(forge(claims(), secret=TEST_SECRET * 2))


def test_a_minted_token_round_trips_through_the_verifier() -> None:
    verifier = TokenVerifier(TEST_SECRET, ["HS256"], LEEWAY)
    minted = mint_access_token(TEST_SECRET, 77, is_staff=True, lifetime_seconds=60)
    principal = verifier.verify(minted)
    assert (principal.user_id, principal.is_staff, principal.token) == (77, True, minted)
    expired = mint_access_token(TEST_SECRET, 77, lifetime_seconds=-LEEWAY - 60)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(expired)


@pytest.mark.parametrize(
    ("params", "user_id"),
    [
        ({"Authorization": "Bearer {t}"}, 42),
        ({"authorization": "Bearer {t}"}, 42),
        ({"token": "{t}"}, 42),
        ({"token": "Bearer {t}"}, 42),
        ({"Authorization": "", "token": "{t}"}, 42),
        ({"Authorization": 12, "token": "{t}"}, 42),
    ],
)
def test_connection_params_carry_the_token(params: dict[str, Any], user_id: int) -> None:
    verifier = TokenVerifier(TEST_SECRET, ["HS256"], LEEWAY)
    jwt = forge(claims(user_id=user_id))
    filled = {k: v.format(t=jwt) if isinstance(v, str) else v for k, v in params.items()}
    assert verifier.verify_connection_params(filled).user_id == user_id


@pytest.mark.parametrize(
    "params",
    [
        None,
        {},
        {"token": ""},
        {"token": None},
        {"token": 42},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer garbage", "token": "{t}"},  # a bad header is not skipped
        {"Authorization": "Bearer {refresh}"},
        {"token": "{refresh}"},
        {"token": "{expired}"},
    ],
)
def test_connection_params_without_a_valid_access_token_are_refused(
    params: dict[str, Any] | None,
) -> None:
    verifier = TokenVerifier(TEST_SECRET, ["HS256"], LEEWAY)
    values = {
        "t": forge(claims()),
        "refresh": forge(claims(token_type="refresh")),
        "expired": forge(claims(exp=int(time.time()) - 3600)),
    }
    filled = (
        None
        if params is None
        else {k: v.format(**values) if isinstance(v, str) else v for k, v in params.items()}
    )
    with pytest.raises(Unauthenticated):
        verifier.verify_connection_params(filled)


# --- websocket (graphql-transport-ws) --------------------------------------------------


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(settings) as running:
        yield running


@pytest.mark.parametrize("staff", [False, True])
async def test_a_socket_with_an_authorization_payload_runs_queries_as_that_user(
    server: LiveServer, staff: bool
) -> None:
    payload = {"Authorization": f"Bearer {forge(claims(user_id=42, is_staff=staff))}"}
    async with graphql_socket(server, payload) as socket:
        result = await socket.execute(ME)
        assert result == {"data": {"me": {"userId": 42, "isStaff": staff}}}
        # The socket keeps its identity for later operations too.
        again = await socket.execute("{ me { userId balance { available } } }")
        assert again["data"]["me"]["userId"] == 42


async def test_a_socket_with_a_token_payload_is_accepted(server: LiveServer) -> None:
    async with graphql_socket(server, {"token": forge(claims(user_id=8))}) as socket:
        assert await socket.execute(ME) == {"data": {"me": {"userId": 8, "isStaff": False}}}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"Authorization": "Bearer garbage"}, id="garbage"),
        pytest.param({"Authorization": "Bearer {expired}"}, id="expired"),
        pytest.param({"Authorization": "Bearer {refresh}"}, id="refresh"),
        pytest.param({"Authorization": "Bearer {alg_none}"}, id="alg-none"),
        pytest.param({"Authorization": "Bearer {other_secret}"}, id="wrong-signature"),
        pytest.param({"token": "{expired}"}, id="token-expired"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({}, id="empty"),
        pytest.param(None, id="no-payload"),
    ],
)
async def test_a_socket_without_a_valid_access_token_is_closed_4403(
    server: LiveServer, payload: dict[str, str] | None
) -> None:
    now = int(time.time())
    values = {
        "expired": forge(claims(exp=now - 3600)),
        "refresh": forge(claims(token_type="refresh")),
        "alg_none": forge(claims(), alg="none"),
        "other_secret": forge(claims(), secret="another-secret-that-is-long-enough-for-hs256"),
    }
    message: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        message["payload"] = {k: v.format(**values) for k, v in payload.items()}
    async with graphql_socket(server, init=False) as socket:
        await socket.send(message)
        assert await socket.expect_close() == 4403


async def test_a_socket_cannot_run_operations_before_it_is_acknowledged(
    server: LiveServer,
) -> None:
    async with graphql_socket(server, init=False) as socket:
        await socket.subscribe(ME)
        assert await socket.expect_close() == 4401  # the protocol's "Unauthorized"
