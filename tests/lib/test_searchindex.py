"""Keyed search terms and tokens, and short sealed values (mssante.lib, no Django)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mssante.lib import crypto, fieldseal, searchindex


def test_words_are_lower_case_without_accents_and_split_on_anything_else() -> None:
    text = "Cœur : ÉCHOGRAPHIE trans-thoracique, Mme Zoé O'Neill (n° 12345) l'été"
    assert searchindex.words(text) == [
        "coeur",
        "echographie",
        "trans",
        "thoracique",
        "mme",
        "zoe",
        "neill",
        "12345",
        "ete",
    ]


def test_a_message_weighs_a_bounded_number_of_terms() -> None:
    huge = " ".join(f"mot{i}" for i in range(50_000))
    doc = searchindex.Document(subject="Bilan", texts=[huge, huge])
    terms = doc.terms()
    words = [t for t in terms if t.startswith("w:")]
    assert len(words) == searchindex.MAX_WORDS
    assert len(terms) < searchindex.MAX_WORDS * 6


def test_the_query_matches_whole_words_and_the_last_one_as_a_prefix() -> None:
    query = searchindex.parse_query("Échographie cardi", sender="Dupont", with_attachments=True)
    assert query.terms == ("w:echographie", "p:cardi", "fp:dupont", searchindex.ATTACHMENT)
    doc = searchindex.Document(
        subject="Échographie",
        texts=["cardiologie"],
        senders=["Julien Dupont"],
        has_attachments=True,
    )
    assert set(query.terms) <= doc.terms()


def test_a_long_last_word_is_matched_by_its_longest_indexed_prefix() -> None:
    query = searchindex.parse_query("cardiologie")
    assert query.terms == ("p:cardio",)


def test_a_query_of_too_many_words_is_refused() -> None:
    with pytest.raises(searchindex.QueryError):
        searchindex.parse_query(" ".join(f"m{i}" for i in range(searchindex.MAX_QUERY_WORDS + 1)))


def test_tokens_depend_on_the_key_and_say_nothing_of_the_order() -> None:
    terms = ["w:bilan", "w:sanguin", "p:bil"]
    one, two = os.urandom(32), os.urandom(32)
    prepared = searchindex.digests(one, terms)
    assert len(prepared) == 3 * searchindex.DIGEST_SIZE
    assert prepared == searchindex.digests(one, reversed(terms))
    box_a = searchindex.tokens(one, prepared)
    assert box_a == sorted(box_a) and len(box_a) == 3
    assert not set(box_a) & set(searchindex.tokens(two, prepared))
    assert all(-(2**63) <= t < 2**63 for t in box_a)


@given(st.text(max_size=300))
def test_any_text_gives_words_of_letters_and_digits_only(text: str) -> None:
    for word in searchindex.words(text):
        assert 2 <= len(word) <= searchindex.MAX_WORD
        assert all(c.isalnum() for c in word)


def test_a_sealed_value_opens_only_in_its_own_column_and_survives_a_rotation() -> None:
    old = crypto.KeyRing({"a": os.urandom(32)}, "a")
    sealed = fieldseal.seal_value(old, "mailboxes.message.subject", "Résultats de Mme X")
    assert b"Mme" not in sealed
    assert fieldseal.open_value(old, "mailboxes.message.subject", sealed) == "Résultats de Mme X"
    with pytest.raises(crypto.BlobIntegrityError):
        fieldseal.open_value(old, "mailboxes.draft.subject", sealed)
    rotated = crypto.KeyRing({"b": os.urandom(32), "a": old["a"]}, "b")
    assert fieldseal.key_id_of(sealed) == "a"
    assert fieldseal.open_value(rotated, "mailboxes.message.subject", sealed).startswith("Rés")
    with pytest.raises(crypto.UnknownKeyError):
        fieldseal.open_value(crypto.KeyRing({"b": rotated["b"]}, "b"), "x", sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(crypto.BlobIntegrityError):
        fieldseal.open_value(old, "mailboxes.message.subject", tampered)
