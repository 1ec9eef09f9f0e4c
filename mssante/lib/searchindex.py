"""Keyed search tokens: the words of a message as HMACs, never the words themselves.

A message is indexed by *terms* (a word, a prefix of a word, a word of its sender…),
and each term is stored only as a *token*: HMAC-SHA256 of the term under a term key (once per
message, ``digests``), then AES-256 of that under a key of the mailbox (per recipient,
``tokens``), the first 8 bytes read as a signed 64-bit integer (a PostgreSQL ``bigint``). Without the
key, a token says nothing of its word; with it, the search computes the tokens of the
query's words and asks for the entries holding all of them.

Terms, each a short prefix and a normalised word (lower case, accents folded, split on
anything that is not a letter or a digit):

- ``w:<word>`` every word of the subject, correspondents, body and readable attachments;
- ``p:<prefix>`` its prefixes of PREFIX_MIN to PREFIX_MAX letters (the last word of a
  query is matched as a prefix: "cardio" finds "cardiologie");
- ``f:<word>`` / ``fp:<prefix>`` the words of the sender (name and address), for the
  "De" filter; ``t:`` / ``tp:`` those of the recipients, for the "À" filter;
- ``has:attachment`` when the message carries attachments.

What a token set gives away to whoever holds the database but not the key: how many
distinct terms a message has, and which messages of the same box share a term (equal
tokens); nothing across boxes (each box has its own key), and no word.

Pure Python (no Django): tested alone, and with ``mypy --strict``.
"""

from __future__ import annotations

import hmac
import re
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "ATTACHMENT",
    "DIGEST_SIZE",
    "MAX_QUERY_WORDS",
    "Document",
    "Query",
    "QueryError",
    "derive_key",
    "digests",
    "normalise",
    "parse_query",
    "tokens",
    "words",
]

# A word is 2 to 40 letters or digits; longer runs (base64, hashes, URLs) are noise.
MIN_WORD: Final = 2
MAX_WORD: Final = 40
PREFIX_MIN: Final = 3
PREFIX_MAX: Final = 6
# What one message may weigh in the index, whatever it carries: the text read (after the
# first MAX_TEXT characters nothing more is indexed) and the distinct words kept.
MAX_TEXT: Final = 300_000
MAX_WORDS: Final = 1_000
MAX_QUERY_WORDS: Final = 20
ATTACHMENT: Final = "has:attachment"

_WORD_RE: Final = re.compile(r"[^\W_]+")
# Letters NFKD does not take apart.
_FOLDED: Final = "œæøđł\u0131"
_FOLD: Final = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "\u0131": "i"})


# The combining marks NFKD leaves after letters (accents, cedillas, diacritics).
_MARKS: Final = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def normalise(text: str) -> str:
    """Lower case, accents removed, ligatures spelled out: ``"Cœur Élodie"`` → ``"coeur elodie"``."""
    text = text.casefold()
    if text.isascii():
        return text
    if any(c in text for c in _FOLDED):
        text = text.translate(_FOLD)
    # Compatibility forms may decompose to capitals (a circled Ⓐ): lower them again.
    return _MARKS.sub("", unicodedata.normalize("NFKD", text)).casefold()


def words(text: str, limit: int = MAX_WORDS) -> list[str]:
    """The distinct normalised words of ``text``, in order of first appearance, at most ``limit``."""
    # findall and dict.fromkeys run in C: a 20 kB body is a few thousand words.
    found = dict.fromkeys(_WORD_RE.findall(normalise(text[:MAX_TEXT])))
    return [w for w in found if MIN_WORD <= len(w) <= MAX_WORD][:limit]


def _prefixes(word: str) -> Iterable[str]:
    for size in range(PREFIX_MIN, min(len(word), PREFIX_MAX) + 1):
        yield word[:size]


@dataclass
class Document:
    """What a message says, gathered as text before it becomes terms."""

    subject: str = ""
    senders: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    attachment_names: list[str] = field(default_factory=list)
    has_attachments: bool = False

    def terms(self) -> set[str]:
        """Every term of the message (bounded: MAX_TEXT characters, MAX_WORDS words)."""
        budget = MAX_TEXT
        chunks: list[str] = []
        for chunk in [
            self.subject,
            *self.senders,
            *self.recipients,
            *self.attachment_names,
            *self.texts,
        ]:
            if budget <= 0:
                break
            chunks.append(chunk[:budget])
            budget -= len(chunk)
        out: set[str] = set()
        for word in words("\n".join(chunks)):
            out.add("w:" + word)
            out.update("p:" + p for p in _prefixes(word))
        for kind, people in (("f", self.senders), ("t", self.recipients)):
            for word in words(" ".join(people)[:10_000], 200):
                out.add(f"{kind}:{word}")
                out.update(f"{kind}p:{p}" for p in _prefixes(word))
        if self.has_attachments:
            out.add(ATTACHMENT)
        return out


class QueryError(ValueError):
    """A query that cannot be searched (its text is the reason, in English: callers translate)."""


@dataclass(frozen=True)
class Query:
    """The terms an entry must all hold to match."""

    terms: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.terms)


def _word_terms(text: str, kind: str) -> list[str]:
    """Terms for the words of ``text``: each whole word, the last one as a prefix."""
    found = words(text, MAX_QUERY_WORDS + 1)
    if len(found) > MAX_QUERY_WORDS:
        raise QueryError("too many words")
    terms = [f"{kind}:{w}" for w in found[:-1]]
    if found:
        last = found[-1]
        # A prefix of PREFIX_MAX letters is the longest indexed: a longer last word is
        # matched by its first PREFIX_MAX letters (a few more results, never fewer).
        terms.append(
            f"{kind}p:{last[:PREFIX_MAX]}" if len(last) >= PREFIX_MIN else f"{kind}:{last}"
        )
    return terms


def parse_query(
    text: str = "", *, sender: str = "", recipient: str = "", with_attachments: bool = False
) -> Query:
    """The terms of a search: words anywhere, words of the sender, of a recipient."""
    terms = [
        *_word_terms(text, "w"),
        *_word_terms(sender, "f"),
        *_word_terms(recipient, "t"),
    ]
    # "w:" and "p:" spell the general terms (kept short: they are most of the index).
    terms = [t.replace("wp:", "p:", 1) if t.startswith("wp:") else t for t in terms]
    if with_attachments:
        terms.append(ATTACHMENT)
    return Query(tuple(dict.fromkeys(terms)))


DIGEST_SIZE: Final = 16


def digests(key: bytes, terms: Iterable[str]) -> bytes:
    """The terms' keyed digests (HMAC-SHA256 under ``key``, 16 bytes each), sorted and
    joined: computed once per message, then turned into each recipient box's tokens."""
    found = {hmac.digest(key, term.encode("utf-8"), "sha256")[:DIGEST_SIZE] for term in terms}
    return b"".join(sorted(found))


def tokens(box_key: bytes, prepared: bytes) -> list[int]:
    """One box's tokens of ``digests``: AES-256 of each digest under the box's key, its first
    8 bytes as a signed 64-bit integer; sorted (their order tells nothing of the text).

    A block cipher used as a keyed permutation of independent 16-byte values (ECB is
    that, and nothing else here: no message is encrypted with it): one call encrypts a
    message's thousands of digests for a box, where an HMAC each would cost a Python
    call per term and recipient. Without the box's key, its tokens are unrelated to
    another box's and to the words.
    """
    if not prepared:
        return []
    if len(prepared) % DIGEST_SIZE:
        raise ValueError("digests are 16 bytes each")
    encryptor = Cipher(algorithms.AES(box_key), modes.ECB()).encryptor()  # noqa: S305
    sealed = encryptor.update(prepared) + encryptor.finalize()
    # The first 8 bytes of each 16-byte block, as signed integers (unpacked in C).
    return sorted(set(struct.unpack(f"<{len(sealed) // 8}q", sealed)[::2]))


def derive_key(master: bytes, context: str) -> bytes:
    """A 32-byte key for one purpose (``context``), derived from a master key (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=context.encode("utf-8")
    ).derive(master)
