"""What a search query asks for: checked once, then put in each backend's terms.

A query is plain words, all of which must match (in any word form): no operators, no
phrases, no prefixes. Quotes, ``-``, ``*``, ``NEAR(`` and the like are punctuation, so no
query can be a syntax error in either engine. PostgreSQL reads the text itself
(``plainto_tsquery``); SQLite's FTS5 gets an expression built here from the words alone,
each quoted, so nothing in it is FTS5 syntax.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import snowballstemmer
from snowballstemmer.basestemmer import BaseStemmer

from llm_gateway.errors import ValidationFailed
from llm_gateway.services.chat.search.stop_words import STOP_WORDS

MAX_QUERY_LENGTH = 200
# Letters and digits: what FTS5's unicode61 tokenizer and PostgreSQL's parser keep as words.
WORD = re.compile(r"[^\W_]+")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
MIN_PREFIX = 3


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """A checked query: its text, and the words that count (stop words left out)."""

    text: str
    words: tuple[str, ...]

    @property
    def fts5_query(self) -> str:
        """The FTS5 expression: every word, English ones stemmed by the table's porter
        tokenizer, Russian ones by their Snowball stem as a prefix (FTS5 has no Russian
        stemmer: ``кошка`` becomes ``"кошк"*``, which finds ``кошки`` and ``кошкой``).
        Only for terms with words: a query of stop words alone is not run at all."""
        if not self.words:
            raise ValueError("no words to match")
        return " AND ".join(_fts5_term(word) for word in self.words)


def parse_query(text: str, *, field: str = "query") -> SearchTerms:
    """The terms of a search, or VALIDATION_FAILED for a query too long or without words."""
    if len(text) > MAX_QUERY_LENGTH:
        raise ValidationFailed(
            f"{field} must be at most {MAX_QUERY_LENGTH} characters.",
            field=field,
            maximum=MAX_QUERY_LENGTH,
        )
    terms = search_terms(text)
    if terms is None:
        raise ValidationFailed(f"{field} must contain a word (letters or digits).", field=field)
    return terms


def search_terms(text: str) -> SearchTerms | None:
    """The terms of ``text``, or None when it holds no word at all (only punctuation)."""
    words = [word.lower() for word in WORD.findall(text)]
    if not words:
        return None
    kept = tuple(dict.fromkeys(word for word in words if word not in STOP_WORDS))
    return SearchTerms(text=text.strip(), words=kept)


def _fts5_term(word: str) -> str:
    if CYRILLIC.search(word) is None:
        return _quoted(word)
    stem: str = _russian_stemmer().stemWord(word)
    if len(stem) < MIN_PREFIX:
        return _quoted(word)
    # The stemmer spells ё as е; the index keeps the text as written, so try both.
    as_written = word[: len(stem)]
    if as_written != stem and as_written.replace("ё", "е") == stem:
        return f"({_quoted(stem)}* OR {_quoted(as_written)}*)"
    return f"{_quoted(stem)}*"


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


@functools.cache
def _russian_stemmer() -> BaseStemmer:
    # Used synchronously, one word at a time: sharing it between tasks is safe.
    return snowballstemmer.stemmer("russian")
