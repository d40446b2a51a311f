"""The body of ``POST /v1/chat/completions``, checked for shape and turned into a request.

Every refusal names the parameter (``param``), as OpenAI's own errors do. A parameter the
gateway does not carry is refused, never dropped; one sent with its neutral value
(``n: 1``, ``presence_penalty: 0``, ``logprobs: false``, or ``null``) changes nothing and
is accepted. Which parameters a model can honour is the service's check, not this one.
"""

from __future__ import annotations

import math
from typing import Any

from llm_gateway.errors import ValidationFailed
from llm_gateway.providers.base import ChatMessage, ToolCall
from llm_gateway.services.chat.completions.planning import CompletionRequest

MAX_MESSAGES = 2_000
MAX_TOOLS = 128
MAX_STOP = 4
MAX_USER = 256
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

# Parameters accepted only with the value that changes nothing.
NEUTRAL: dict[str, tuple[object, ...]] = {
    "n": (1,),
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
    "logprobs": (False,),
    "store": (False,),
}
CARRIED = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "seed",
}


def _invalid(message: str, param: str) -> ValidationFailed:
    return ValidationFailed(message, field=param)


def parse_completion(body: object, *, max_content: int) -> CompletionRequest:
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", "body")
    for name, value in body.items():
        if value is None or name in CARRIED:
            continue
        if any(type(value) is type(same) and value == same for same in NEUTRAL.get(name, ())):
            continue
        raise _invalid(f"The parameter '{name}' is not supported by this gateway.", name)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("'model' is required.", "model")
    stream = _optional(body, "stream", bool) or False
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict) or not set(options) <= {"include_usage"}:
            raise _invalid("stream_options takes only include_usage.", "stream_options")
        include_usage = (
            _optional(options, "include_usage", bool, "stream_options.include_usage") or False
        )
        if not stream:
            raise _invalid("stream_options is only allowed with stream: true.", "stream_options")
    max_tokens = _optional(body, "max_completion_tokens", int)
    if max_tokens is None:
        max_tokens = _optional(body, "max_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise _invalid("max_tokens must be at least 1.", "max_tokens")
    return CompletionRequest(
        model=model,
        messages=_messages(body.get("messages"), max_content),
        stream=stream,
        include_usage=include_usage,
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        user=_user(body.get("user")),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=_optional(body, "parallel_tool_calls", bool),
        response_format=_response_format(body.get("response_format")),
        seed=_optional(body, "seed", int),
    )


def _optional(data: dict[str, Any], name: str, kind: type, param: str | None = None) -> Any:
    value = data.get(name)
    if value is None:
        return None
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise _invalid(f"'{param or name}' must be a {kind.__name__}.", param or name)
    if kind is int and abs(value) > 2**53 - 1:
        raise _invalid(f"'{param or name}' is out of range.", param or name)
    return value


def _number(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"'{name}' must be a number.", name)
    return float(value)


def _text(value: object, param: str, max_content: int, *, allow_empty: bool = True) -> str:
    if isinstance(value, list):  # text parts
        pieces = []
        for index, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _invalid("Only text content parts are supported.", f"{param}[{index}]")
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid("A text part needs 'text'.", f"{param}[{index}].text")
            pieces.append(text)
        value = "".join(pieces)
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str):
        raise _invalid("Message content must be a string or a list of text parts.", param)
    if "\x00" in value:
        raise _invalid("Message content must not contain NUL characters.", param)
    if len(value) > max_content:
        raise _invalid(f"Message content must be at most {max_content} characters.", param)
    return value


def _messages(raw: object, max_content: int) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise _invalid("'messages' must be a non-empty array.", "messages")
    if len(raw) > MAX_MESSAGES:
        raise _invalid(f"At most {MAX_MESSAGES} messages are accepted.", "messages")
    messages = []
    for index, item in enumerate(raw):
        param = f"messages[{index}]"
        if not isinstance(item, dict):
            raise _invalid("Each message must be an object.", param)
        role = item.get("role")
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise _invalid("'name' must be a string.", f"{param}.name")
        content = item.get("content")
        if role == "tool":
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _invalid("A tool message needs 'tool_call_id'.", f"{param}.tool_call_id")
            text = _text(content, f"{param}.content", max_content)
            messages.append(ChatMessage("tool", text, tool_call_id=call_id))
            continue
        if role not in ROLES:
            raise _invalid(
                "'role' must be one of system, developer, user, assistant, tool.", f"{param}.role"
            )
        calls = _tool_calls(item.get("tool_calls"), param) if role == "assistant" else ()
        text = _text(content, f"{param}.content", max_content)
        if not text and not calls and role != "assistant":
            raise _invalid("Message content must not be empty.", f"{param}.content")
        messages.append(ChatMessage(ROLES[role], text, tool_calls=calls, name=name))  # type: ignore[arg-type]
    return tuple(messages)


def _tool_calls(raw: object, param: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid("'tool_calls' must be an array.", f"{param}.tool_calls")
    calls = []
    for index, call in enumerate(raw):
        where = f"{param}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise _invalid("A tool call needs id and function {name, arguments}.", where)
        calls.append(ToolCall(call["id"], function["name"], function["arguments"]))
    return tuple(calls)


def _stop(raw: object) -> tuple[str, ...] | None:
    if raw is None:
        return None
    stops = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise _invalid(f"'stop' must be a string or up to {MAX_STOP} strings.", "stop")
    return tuple(stops)


def _user(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_USER:
        raise _invalid(f"'user' must be a string of at most {MAX_USER} characters.", "user")
    return raw or None


def _tools(raw: object) -> tuple[dict[str, Any], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > MAX_TOOLS:
        raise _invalid(f"'tools' must be an array of at most {MAX_TOOLS} tools.", "tools")
    for index, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not function["name"]
            or not isinstance(function.get("parameters", {}), dict)
        ):
            raise _invalid(
                "Each tool must be {type: 'function', function: {name, parameters?}}.",
                f"tools[{index}]",
            )
    return tuple(raw) or None


def _tool_choice(raw: object) -> str | dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw in ("auto", "none", "required"):
        return raw
    function = raw.get("function") if isinstance(raw, dict) else None
    if (
        isinstance(raw, dict)
        and raw.get("type") == "function"
        and isinstance(function, dict)
        and isinstance(function.get("name"), str)
    ):
        return raw
    raise _invalid(
        "'tool_choice' must be auto, none, required or {type: 'function', function: {name}}.",
        "tool_choice",
    )


def _response_format(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("text", "json_object", "json_schema"):
        raise _invalid(
            "'response_format' must have type text, json_object or json_schema.", "response_format"
        )
    if raw["type"] == "json_schema" and not isinstance(raw.get("json_schema"), dict):
        raise _invalid("json_schema needs a 'json_schema' object.", "response_format")
    return raw
