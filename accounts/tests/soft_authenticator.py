"""A software WebAuthn authenticator for the tests: makes the answers a browser would post.

It follows the Level 2 data layout (authenticator data, "none" attestation in CBOR,
ES256 signatures over authenticator data + SHA-256 of the client data) so that the
``webauthn`` library verifies its answers exactly as it verifies a real authenticator's,
and lets a test break any part of them (origin, challenge, counter, signature).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

UP, UV, AT = 0x01, 0x04, 0x40


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)


@dataclass
class Credential:
    rp_id: str
    user_handle: bytes
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    counter: int = 0

    @property
    def id(self) -> str:
        return _b64(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _auth_data(self, flags: int, attested: bool) -> bytes:
        data = hashlib.sha256(self.rp_id.encode()).digest()
        data += bytes([flags]) + struct.pack(">I", self.counter)
        if attested:
            data += b"\x00" * 16 + struct.pack(">H", len(self.credential_id))
            data += self.credential_id + self._cose_key()
        return data


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    ).encode()


def register(
    options: dict[str, Any], origin: str, *, flags: int = UP | UV | AT
) -> tuple[Credential, dict[str, Any]]:
    """A new credential for these creation options, and the browser's answer."""
    credential = Credential(
        rp_id=options["rp"]["id"], user_handle=base64url_to_bytes(options["user"]["id"])
    )
    client_data = _client_data("webauthn.create", options["challenge"], origin)
    attestation = cbor2.dumps(
        {"fmt": "none", "attStmt": {}, "authData": credential._auth_data(flags, True)}
    )
    return credential, {
        "id": credential.id,
        "rawId": credential.id,
        "type": "public-key",
        "response": {
            "clientDataJSON": _b64(client_data),
            "attestationObject": _b64(attestation),
            "transports": ["internal"],
        },
        "clientExtensionResults": {},
    }


def sign(
    credential: Credential,
    options: dict[str, Any],
    origin: str,
    *,
    flags: int = UP | UV,
    step: int = 1,
) -> dict[str, Any]:
    """The browser's answer to request options, signed by ``credential`` (counter + step)."""
    credential.counter += step
    client_data = _client_data("webauthn.get", options["challenge"], origin)
    auth_data = credential._auth_data(flags, False)
    signature = credential.key.sign(
        auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
    )
    return {
        "id": credential.id,
        "rawId": credential.id,
        "type": "public-key",
        "response": {
            "clientDataJSON": _b64(client_data),
            "authenticatorData": _b64(auth_data),
            "signature": _b64(signature),
            "userHandle": _b64(credential.user_handle),
        },
        "clientExtensionResults": {},
    }
