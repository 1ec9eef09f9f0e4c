import base64

import pytest

from mssante.lib.crypto import (
    BlobIntegrityError,
    KeyRing,
    SealedBlob,
    UnknownKeyError,
    generate_key,
    open_blob,
    rewrap,
    seal,
)

MARKER = "Compte rendu échographie : MARQUEUR-SECRET-42".encode()


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing({"k1": generate_key()}, current="k1")


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def test_it_round_trips_a_blob(ring):
    sealed = seal(ring, MARKER)
    assert open_blob(ring, sealed.key_id, sealed.wrapped_key, sealed.ciphertext) == MARKER


def test_it_round_trips_an_empty_blob(ring):
    sealed = seal(ring, b"")
    assert open_blob(ring, sealed.key_id, sealed.wrapped_key, sealed.ciphertext) == b""


def test_it_does_not_leak_the_plaintext_into_the_stored_bytes(ring):
    sealed = seal(ring, MARKER * 10)
    assert b"MARQUEUR-SECRET-42" not in sealed.ciphertext
    assert b"MARQUEUR-SECRET-42" not in sealed.wrapped_key
    assert "MARQUEUR" not in repr(sealed)


def test_it_uses_a_versioned_compact_format(ring):
    sealed = seal(ring, b"abc")
    assert sealed.key_id == "k1"
    assert sealed.ciphertext[0] == 1
    assert len(sealed.ciphertext) == 1 + 12 + 3 + 16
    assert sealed.wrapped_key[0] == 1
    assert len(sealed.wrapped_key) == 1 + 12 + 32 + 16


def test_it_seals_the_same_plaintext_differently_each_time(ring):
    first, second = seal(ring, MARKER), seal(ring, MARKER)
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_key != second.wrapped_key


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_it_detects_a_tampered_blob(ring, position):
    sealed = seal(ring, MARKER)
    tampered = flip(sealed.ciphertext, position)
    with pytest.raises(BlobIntegrityError):
        open_blob(ring, sealed.key_id, sealed.wrapped_key, tampered)


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_it_detects_a_tampered_wrapped_key(ring, position):
    sealed = seal(ring, MARKER)
    tampered = flip(sealed.wrapped_key, position)
    with pytest.raises(BlobIntegrityError):
        open_blob(ring, sealed.key_id, tampered, sealed.ciphertext)


def test_it_detects_a_truncated_blob(ring):
    sealed = seal(ring, MARKER)
    for cut in (0, 5, 13, len(sealed.ciphertext) - 1):
        with pytest.raises(BlobIntegrityError):
            open_blob(ring, sealed.key_id, sealed.wrapped_key, sealed.ciphertext[:cut])


def test_it_detects_a_wrapped_key_swapped_between_blobs(ring):
    first, second = seal(ring, b"one"), seal(ring, b"two")
    with pytest.raises(BlobIntegrityError):
        open_blob(ring, first.key_id, second.wrapped_key, first.ciphertext)


def test_it_refuses_a_wrapped_key_presented_as_a_body(ring):
    sealed = seal(ring, MARKER)
    with pytest.raises(BlobIntegrityError):
        open_blob(ring, sealed.key_id, sealed.wrapped_key, sealed.wrapped_key)


def test_it_binds_the_associated_data(ring):
    sealed = seal(ring, MARKER, aad=b"message:1")
    assert open_blob(ring, "k1", sealed.wrapped_key, sealed.ciphertext, aad=b"message:1") == MARKER
    with pytest.raises(BlobIntegrityError):
        open_blob(ring, "k1", sealed.wrapped_key, sealed.ciphertext, aad=b"message:2")


def test_it_reports_an_unknown_key_id(ring):
    sealed = seal(ring, MARKER)
    with pytest.raises(UnknownKeyError, match="k9"):
        open_blob(ring, "k9", sealed.wrapped_key, sealed.ciphertext)
    assert issubclass(UnknownKeyError, BlobIntegrityError)


def test_it_refuses_a_blob_sealed_under_another_master_key(ring):
    sealed = seal(ring, MARKER)
    impostor = KeyRing({"k1": generate_key()}, current="k1")
    with pytest.raises(BlobIntegrityError):
        open_blob(impostor, sealed.key_id, sealed.wrapped_key, sealed.ciphertext)


def test_rewrap_keeps_the_plaintext_readable_after_rotation():
    old_key, new_key = generate_key(), generate_key()
    old_ring = KeyRing({"k1": old_key}, current="k1")
    sealed = seal(old_ring, MARKER)

    new_ring = KeyRing({"k2": new_key, "k1": old_key}, current="k2")
    key_id, wrapped = rewrap(new_ring, sealed.key_id, sealed.wrapped_key)

    assert key_id == "k2"
    assert wrapped != sealed.wrapped_key
    assert open_blob(new_ring, key_id, wrapped, sealed.ciphertext) == MARKER
    # Once every blob is rewrapped the old key can go.
    only_new = KeyRing({"k2": new_key}, current="k2")
    assert open_blob(only_new, key_id, wrapped, sealed.ciphertext) == MARKER
    with pytest.raises(UnknownKeyError):
        open_blob(only_new, sealed.key_id, sealed.wrapped_key, sealed.ciphertext)


def test_new_blobs_use_the_current_key_while_old_ones_stay_readable():
    old_key, new_key = generate_key(), generate_key()
    old_sealed = seal(KeyRing({"k1": old_key}, current="k1"), b"old")
    ring = KeyRing.from_spec(f"k2:{b64(new_key)},k1:{b64(old_key)}")
    assert seal(ring, b"new").key_id == "k2"
    assert open_blob(ring, "k1", old_sealed.wrapped_key, old_sealed.ciphertext) == b"old"


def test_rewrap_refuses_a_tampered_wrapped_key(ring):
    sealed = seal(ring, MARKER)
    with pytest.raises(BlobIntegrityError):
        rewrap(ring, sealed.key_id, flip(sealed.wrapped_key, 20))


def test_it_parses_a_key_spec_with_the_first_key_current():
    k1, k2 = generate_key(), generate_key()
    ring = KeyRing.from_spec(
        f" k1:{b64(k1)} , k2:{base64.urlsafe_b64encode(k2).decode().rstrip('=')}"
    )
    assert ring.current == "k1"
    assert ring["k1"] == k1
    assert ring["k2"] == k2
    assert KeyRing.from_spec(ring.to_spec())["k2"] == k2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("k1", "entry #1"),
        (":AAAA", "entry #1"),
        ("k1:not base64!!", r"entry #1 \('k1'\).*base64"),
        ("k1:" + b64(b"short"), "5 bytes"),
        ("k1:{key},", "entry #2"),
        ("k1:{key},k1:{key}", "twice"),
        ("bad id:{key}", "entry #1"),
    ],
)
def test_it_rejects_a_bad_key_spec_naming_the_bad_part(spec, message):
    key = b64(generate_key())
    with pytest.raises(ValueError, match=message) as caught:
        KeyRing.from_spec(spec.format(key=key))
    assert key not in str(caught.value)


def test_it_rejects_a_ring_whose_current_key_is_missing():
    with pytest.raises(ValueError, match="k2"):
        KeyRing({"k1": generate_key()}, current="k2")


def test_it_rejects_a_master_key_of_the_wrong_size():
    with pytest.raises(ValueError, match="16 bytes"):
        KeyRing({"k1": b"x" * 16}, current="k1")


def test_it_never_shows_key_material_in_its_repr():
    key = generate_key()
    ring = KeyRing({"k1": key}, current="k1")
    assert b64(key) not in repr(ring)
    assert repr(key) not in repr(ring)
    assert "k1" in repr(ring)


def test_generated_keys_are_random_and_32_bytes():
    assert len(generate_key()) == 32
    assert generate_key() != generate_key()


def test_sealed_blob_is_a_plain_record():
    blob = SealedBlob(key_id="k1", wrapped_key=b"w", ciphertext=b"c")
    assert (blob.key_id, blob.wrapped_key, blob.ciphertext) == ("k1", b"w", b"c")
