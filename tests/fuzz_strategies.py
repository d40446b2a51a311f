"""Hypothesis strategies for fuzzing the GraphQL schema (tests/hardening/test_fuzz_graphql.py).

hypothesis-graphql writes valid documents but knows nothing of our custom scalars, and
its strings are plain text: here each scalar gets the values that broke (or could break)
a layer beneath GraphQL — bounds of the integer types, calendars' edges, decimals a
NUMERIC column cannot hold, NUL characters, lone surrogates, names that exist. Values come
mostly well-formed, so a document gets past the first check and reaches the resolvers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import graphql
from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DocumentNode,
    FloatValueNode,
    IntValueNode,
    NameNode,
    OperationDefinitionNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
)
from hypothesis import strategies as st

LIVE = {
    name: str(uuid.UUID(int=0xF022 << 112 | index))
    for index, name in enumerate(("dialog", "question", "answer"))
}
"""Stand-ins for the ids of a live dialog and its two messages, replaced as a request is
sent (``Request.body``): documents are drawn before that dialog exists, or after it was
deleted and made again."""
SAFE = 2**53 - 1
INT_EDGES = (0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, SAFE, -SAFE, SAFE + 1, -SAFE - 1)
KNOWN_NAMES = (
    *("mock", "gpt-4-turbo", "claude-3-opus", "GigaChat", "assistant", "MOCK"),
    *("RATE_LIMIT_REQUESTS", "MAX_CONTENT_LENGTH", "INITIAL_TOKEN_BALANCE", "OPENAI_API_KEY"),
    *("OPENAI_BASE_URL", "LIMITS_TIMEZONE", "balance.topup", "config.set", "dialog", "user"),
    *("0", "-1", "1", "9007199254740993", "1e400", "nan", "", " ", "\t", "Europe/Moscow"),
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, picked in proportion to its weight (rare ones stay rare)."""
    slots = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(slots).flatmap(lambda strategy: strategy)


# Hypothesis's own text is full of NUL characters, which stop a whole document: rare here.
TEXT = st.text(st.characters(min_codepoint=1), max_size=40)


def _spliced(char: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(TEXT, char, TEXT).map("".join)


def strings() -> st.SearchStrategy[str]:
    lone_surrogate = st.integers(0xD800, 0xDFFF).map(chr)
    return weighted(
        (60, TEXT),
        (40, st.sampled_from(KNOWN_NAMES)),
        (1, _spliced(st.just("\x00"))),
        (1, _spliced(lone_surrogate)),
        (1, st.sampled_from(["x" * 100_001, "é" * 2_000])),
    )


def safe_ints() -> st.SearchStrategy[int]:
    return weighted(
        (3, st.sampled_from(INT_EDGES)),
        (3, st.integers(-10, 10_000)),
        (1, st.integers(-(2**70), 2**70)),
    )


def uuids() -> st.SearchStrategy[str]:
    return weighted(
        (6, st.sampled_from(sorted(LIVE.values()))),
        (2, st.uuids().map(str)),
        (1, st.sampled_from(["", "nope", str(uuid.UUID(int=0)), "{" + "f" * 32 + "}", "1" * 99])),
        (1, strings()),
    )


def dates() -> st.SearchStrategy[str]:
    return weighted(
        (4, st.dates().map(lambda d: d.isoformat())),
        (1, st.sampled_from(["0001-01-01", "9999-12-31", "2024-02-30", "20240101", "-1"])),
        (1, strings()),
    )


def datetimes() -> st.SearchStrategy[str]:
    zoned = st.datetimes(timezones=st.timezones() | st.none())
    edges = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999-14:00", "2024-13-01T00:00"]
    return weighted(
        (4, zoned.map(lambda d: d.isoformat())),
        (1, st.sampled_from(edges)),
        (1, strings()),
    )


def decimals() -> st.SearchStrategy[ValueNode]:
    texts = weighted(
        (3, st.decimals(allow_nan=True, allow_infinity=True).map(str)),
        (1, st.sampled_from(["1E+999999999", "-0", "0.0000001", "1" * 40, "sNaN", "1_0", " 1"])),
        (1, strings()),
    )
    numbers = st.integers(-(2**64), 2**64).map(lambda n: IntValueNode(value=str(n))) | st.floats(
        allow_nan=False, allow_infinity=False
    ).map(lambda f: FloatValueNode(value=repr(f)))
    return weighted((4, texts.map(string_node)), (1, numbers))


def json_values() -> st.SearchStrategy[Any]:
    finite = st.floats(allow_nan=False, allow_infinity=False)  # as JSON has them
    leaves = st.none() | st.booleans() | safe_ints() | finite | strings()
    anything = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings(), inner, max_size=4),
        max_leaves=12,
    )
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"]) | anything},
        optional={"content": strings() | anything, "created_at": datetimes() | anything},
    )
    dialog = st.fixed_dictionaries(
        {"messages": st.lists(message, max_size=4) | anything},
        optional={
            "title": strings() | anything,
            "model_name": strings(),
            "system_prompt": strings(),
            "agent_config": st.dictionaries(
                st.sampled_from(["temperature", "max_tokens"]), anything
            ),
            "created_at": datetimes(),
        },
    )
    export = st.fixed_dictionaries(
        {"dialogs": st.lists(dialog, max_size=3) | anything},
        optional={"version": st.sampled_from(["1.0", "2.0", "3.0"]) | anything},
    )
    return weighted((3, export), (1, anything))


def string_node(value: str) -> ValueNode:
    return StringValueNode(value=value)


def literal(value: Any) -> ValueNode:
    """The GraphQL literal of a JSON value (``ast_from_value`` needs a type; JSON has none)."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return StringValueNode(value=value)
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(literal(item) for item in value))
    fields = (
        graphql.ObjectFieldNode(name=NameNode(value=key), value=literal(item))
        for key, item in value.items()
        if key.isascii() and key.isidentifier()  # a GraphQL name, as an object key must be
    )
    return graphql.ObjectValueNode(fields=tuple(fields))


def custom_scalars() -> dict[str, st.SearchStrategy[ValueNode]]:
    """Node strategies for our scalars, and for String and Int (to reach past the parser)."""
    wrong_kind = st.sampled_from(
        [IntValueNode(value="7"), FloatValueNode(value="1.5"), BooleanValueNode(value=True)]
    )
    safe_int_nodes = weighted(
        (8, safe_ints().map(lambda n: IntValueNode(value=str(n)))),
        (1, st.sampled_from([FloatValueNode(value="12.0"), StringValueNode(value="12")])),
    )
    return {
        "String": strings().map(string_node),
        "Int": weighted(
            (3, st.integers(-(2**31), 2**31 - 1)), (1, st.sampled_from(INT_EDGES[:7]))
        ).map(lambda n: IntValueNode(value=str(n))),
        "SafeInt": safe_int_nodes,
        "UUID": weighted((19, uuids().map(string_node)), (1, wrong_kind)),
        "Date": weighted((19, dates().map(string_node)), (1, wrong_kind)),
        "DateTime": weighted((19, datetimes().map(string_node)), (1, wrong_kind)),
        "Decimal": decimals(),
        "JSON": json_values().map(literal),
    }


@dataclass(frozen=True)
class Request:
    """A generated document as sent: inline literals, or its arguments lifted to variables."""

    query: str
    variables: dict[str, Any]

    def body(self, live: Mapping[str, str]) -> bytes:
        """The JSON body, with the ``LIVE`` stand-ins replaced by ``live``'s ids."""
        # ensure_ascii: a lone surrogate travels as a \\ud800 escape, as a browser sends it
        payload = {"query": self.query, "variables": self.variables}
        text = json.dumps(payload, ensure_ascii=True)
        for name, stand_in in LIVE.items():
            text = text.replace(stand_in, live[name])
        return text.encode()

    def __str__(self) -> str:
        return f"{self.query}\nvariables: {json.dumps(self.variables, ensure_ascii=True)[:2000]}"


class _Lifter(Visitor):
    """Replaces every argument's value by a variable of the argument's declared type."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.definitions: list[VariableDefinitionNode] = []
        self.variables: dict[str, Any] = {}

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> ArgumentNode | None:
        argument = self.type_info.get_argument()
        if argument is None:
            return None
        name = f"v{len(self.definitions)}"
        self.variables[name] = graphql.value_from_ast_untyped(node.value)
        self.definitions.append(
            VariableDefinitionNode(
                variable=VariableNode(name=NameNode(value=name)),
                type=graphql.parse_type(str(argument.type)),
            )
        )
        return ArgumentNode(name=node.name, value=VariableNode(name=NameNode(value=name)))


def as_request(schema: graphql.GraphQLSchema, document: DocumentNode, lift: bool) -> Request:
    if not lift:
        return Request(graphql.print_ast(document), {})
    lifter = _Lifter(TypeInfo(schema))
    lifted = graphql.visit(document, TypeInfoVisitor(lifter.type_info, lifter))
    (operation,) = lifted.definitions
    assert isinstance(operation, OperationDefinitionNode)
    operation = OperationDefinitionNode(
        operation=operation.operation,
        name=operation.name,
        selection_set=operation.selection_set,
        directives=operation.directives,
        variable_definitions=tuple(lifter.definitions),
    )
    return Request(graphql.print_ast(DocumentNode(definitions=(operation,))), lifter.variables)
