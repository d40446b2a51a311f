"""How imported messages hang together: the tree of a 3.0 export, or a flat history
(1.0, 2.0) turned into one branch.

Both work on the messages in payload order (which is also their time order: the reader
makes timestamps increase), by the keys the reader gave them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llm_gateway.enums import Role


@dataclass(frozen=True, slots=True)
class Link:
    """One message by its key: its role and the key of its parent (None: a root)."""

    key: str
    role: str
    parent: str | None


MAX_KEY_LENGTH = 100


def tree_link(
    key: object, parent: object, seen: Mapping[str, str | None]
) -> tuple[str | None, str | None, str | None]:
    """A 3.0 message's key and its parent's key, or the problem with them.

    ``seen`` maps each earlier key to the key its replies hang off: itself for a stored
    message, its own parent for one left out (an empty unfinished answer).
    """
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        return None, None, f"id must be a string of 1 to {MAX_KEY_LENGTH} characters."
    if key in seen:
        return None, None, "id repeats an earlier message's id."
    if parent is None:
        return key, None, None
    if not isinstance(parent, str) or parent not in seen:
        return None, None, "parent_id must be the id of an earlier message."
    return key, seen[parent], None


def flat_parents(messages: Sequence[tuple[str, str]]) -> list[Link]:
    """A flat history (key, role) as one branch, as the chat service built it.

    A question follows the newest answer to the question before it (or that question,
    if it had none); an answer hangs off the question before it. Answers to the same
    question (regenerated ones) are siblings.
    """
    links: list[Link] = []
    question: str | None = None
    newest_answer: str | None = None
    for key, role in messages:
        if role == Role.USER:
            links.append(Link(key, role, newest_answer or question))
            question, newest_answer = key, None
        else:
            links.append(Link(key, role, question))
            newest_answer = key
    return links


def newest_leaf(links: Sequence[Link], start: str | None) -> str | None:
    """The newest message under ``start`` (itself if it has no replies); with no
    ``start``, the dialog's last user message's newest answer (the flat history's end)."""
    if not links:
        return None
    if start is None:
        last_question = next((i.key for i in reversed(links) if i.role == Role.USER), None)
        if last_question is None:
            return links[-1].key
        start = last_question
    under = {start}
    newest = start
    for link in links:  # oldest first: a parent is always met before its replies
        if link.parent in under:
            under.add(link.key)
            newest = link.key
    return newest


def active_leaf(links: Sequence[Link], chosen: object, *, tree: bool) -> str | None:
    """The leaf an imported dialog shows: in a tree, the newest message under the chosen
    one (or the newest message, if none or an unknown one was chosen); in a flat
    history, its end."""
    if not tree:
        return newest_leaf(links, None)
    if not isinstance(chosen, str) or not any(link.key == chosen for link in links):
        return links[-1].key if links else None
    return newest_leaf(links, chosen)
