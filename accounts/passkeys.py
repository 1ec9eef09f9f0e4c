"""Passkeys (WebAuthn): enrol, name, use and revoke, with the ``webauthn`` library (py_webauthn).

The ceremonies follow the Level 3 recommendation: the portal makes a random challenge,
keeps it in the holder's session (one at a time, for CHALLENGE_SECONDS, and used once:
taken out of the session before it is checked), the browser asks the authenticator, and
the answer is verified against that challenge, the portal's own origin and relying party
id, with user verification required (a PIN or a biometric on the authenticator: the
passkey is then a factor of its own and a phishing-resistant sign-in).

Every way an answer can be wrong (not JSON, a credential of another account, a replay, a
bad signature, another origin, a stale challenge, a counter that went backwards) ends as
a ``PasskeyError`` with a French message: the views turn it into a 400, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.http.request import RawPostDataException
from django.utils import timezone
from django.utils.translation import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from accounts import services
from accounts.access import STRONG_FACTOR
from accounts.models import PasskeyDevice, User
from audit import journal

log = logging.getLogger(__name__)

# How long the browser has to answer a challenge.
CHALLENGE_SECONDS = 300
# A browser's answer is a few kilobytes at most; anything bigger is refused unread.
MAX_ANSWER_BYTES = 64 * 1024
NAME_MAX = 64
# One holder, a handful of authenticators (phone, laptop, a security key or two).
MAX_PASSKEYS = 10
# The session key the enrolment and sign-in challenges wait under (one of each at a time).
_CHALLENGE = "passkey_challenge"


class PasskeyError(Exception):
    """An answer or a request that cannot be accepted; the message is for the holder."""

    # The account whose passkey signed a refused answer, when one was found.
    owner: User | None = None


# --- The relying party ---------------------------------------------------------------------


def rp_id() -> str:
    """The relying party id: PASSKEY_RP_ID, or SITE_URL's host (a passkey is bound to it)."""
    return str(settings.PASSKEY_RP_ID or urlsplit(settings.SITE_URL).hostname or "localhost")


def expected_origins() -> list[str]:
    """The origins whose answers are accepted: SITE_URL's, and PASSKEY_EXTRA_ORIGINS."""
    site = urlsplit(settings.SITE_URL)
    return [f"{site.scheme}://{site.netloc}", *settings.PASSKEY_EXTRA_ORIGINS]


def user_handle(user: User) -> bytes:
    """The opaque id the authenticator keeps for the account (no identifier, no name).

    An HMAC of the account's primary key under the secret key: stable, so that a
    discoverable credential names its account, and telling nothing to whoever reads it.
    """
    return hmac.new(
        settings.SECRET_KEY.encode(), f"passkey-user:{user.pk}".encode(), hashlib.sha256
    ).digest()


# --- Challenges --------------------------------------------------------------------------------


def _remember_challenge(request: HttpRequest, purpose: str, challenge: bytes) -> None:
    request.session[_CHALLENGE] = {
        "purpose": purpose,
        "challenge": bytes_to_base64url(challenge),
        "at": time.time(),
    }


def _take_challenge(request: HttpRequest, purpose: str) -> bytes:
    """The pending challenge for ``purpose``, removed from the session: usable once."""
    pending = request.session.pop(_CHALLENGE, None)
    if (
        not isinstance(pending, dict)
        or pending.get("purpose") != purpose
        or time.time() - float(pending.get("at", 0)) > CHALLENGE_SECONDS
    ):
        raise PasskeyError(
            _("Cette demande a expiré ou a déjà servi : recommencez depuis le bouton.")
        )
    return base64url_to_bytes(str(pending["challenge"]))


def parse_answer(request: HttpRequest) -> dict[str, Any]:
    """The browser's JSON answer, bounded; PasskeyError when it is not one."""
    if request.content_type != "application/json":
        raise PasskeyError(_("Réponse de l'authentificateur illisible."))
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_ANSWER_BYTES:
        raise PasskeyError(_("Réponse de l'authentificateur trop volumineuse."))
    try:
        body = request.body
    except RawPostDataException:
        raise PasskeyError(_("Réponse de l'authentificateur illisible.")) from None
    if len(body) > MAX_ANSWER_BYTES:
        raise PasskeyError(_("Réponse de l'authentificateur trop volumineuse."))
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PasskeyError(_("Réponse de l'authentificateur illisible.")) from None
    if not isinstance(answer, dict):
        raise PasskeyError(_("Réponse de l'authentificateur illisible."))
    return answer


def _credential(answer: dict[str, Any]) -> dict[str, Any]:
    credential = answer.get("credential")
    if not isinstance(credential, dict) or not isinstance(credential.get("id"), str):
        raise PasskeyError(_("Réponse de l'authentificateur illisible."))
    return credential


# --- Enrolment ---------------------------------------------------------------------------------


def passkeys_of(user: User) -> list[PasskeyDevice]:
    return list(PasskeyDevice.objects.filter(user=user, confirmed=True).order_by("created_at"))


def registration_options(request: HttpRequest, user: User) -> str:
    """Options (JSON) for the browser to create a passkey for ``user``."""
    existing = passkeys_of(user)
    if len(existing) >= MAX_PASSKEYS:
        raise PasskeyError(
            _("Vous avez déjà %(count)d clés d'accès : supprimez-en une avant d'en ajouter.")
            % {"count": MAX_PASSKEYS}
        )
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=settings.OPERATOR_NAME,
        user_id=user_handle(user),
        user_name=user.username,
        user_display_name=user.get_full_name() or user.username,
        timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        # An authenticator that already holds one of the holder's passkeys says so.
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(d.credential_id)) for d in existing
        ],
    )
    _remember_challenge(request, "register", options.challenge)
    return options_to_json(options)


def clean_name(name: object) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise PasskeyError(_("Donnez un nom à cette clé d'accès (par exemple « Téléphone »)."))
    if len(text) > NAME_MAX:
        raise PasskeyError(
            _("Le nom d'une clé d'accès tient en %(max)d caractères.") % {"max": NAME_MAX}
        )
    return text


def _transports(credential: dict[str, Any]) -> list[str]:
    response = credential.get("response")
    raw = response.get("transports") if isinstance(response, dict) else None
    known = {t.value for t in AuthenticatorTransport}
    return (
        [t for t in raw if isinstance(t, str) and t in known][:8] if isinstance(raw, list) else []
    )


def register(request: HttpRequest, user: User, answer: dict[str, Any]) -> PasskeyDevice:
    """Verify the browser's answer to the enrolment challenge and keep the new passkey."""
    name = clean_name(answer.get("name"))
    challenge = _take_challenge(request, "register")
    credential = _credential(answer)
    if PasskeyDevice.objects.filter(user=user, confirmed=True).count() >= MAX_PASSKEYS:
        raise PasskeyError(_("Vous avez déjà le nombre maximal de clés d'accès."))
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=expected_origins(),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        log.info("passkey enrolment refused for user %s: %s", user.pk, type(exc).__name__)
        journal.record(
            "account.passkey_refused", actor=user, obj=user, request=request, step="enrol"
        )
        raise PasskeyError(
            _("La clé d'accès n'a pas pu être vérifiée : elle n'a pas été enregistrée.")
        ) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    # The refusal above is journaled on its own; the passkey, its event and its notice
    # are written together.
    try:
        with transaction.atomic():
            device = PasskeyDevice.objects.create(
                user=user,
                name=name,
                confirmed=True,
                credential_id=credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                aaguid=str(verified.aaguid or ""),
                transports=_transports(credential),
                backed_up=bool(verified.credential_backed_up),
            )
            journal.record(
                "account.passkey_added", actor=user, obj=user, request=request, passkey=device.pk
            )
            services.notify(user, "passkey_added")
    except IntegrityError:
        raise PasskeyError(_("Cette clé d'accès est déjà enregistrée.")) from None
    return device


# --- Sign-in and confirmation ------------------------------------------------------------------


def authentication_options(request: HttpRequest, user: User | None) -> str:
    """Options (JSON) for the browser to sign with a passkey.

    Without a user (sign-in with a passkey alone) the list of allowed credentials is
    empty: the authenticator offers the discoverable passkeys it holds for this site, and
    nothing tells a visitor which accounts exist. With a user (second step after the
    password, or a confirmation), only that user's passkeys are allowed.
    """
    allowed = (
        [
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(d.credential_id))
            for d in passkeys_of(user)
        ]
        if user is not None
        else []
    )
    options = generate_authentication_options(
        rp_id=rp_id(),
        timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    _remember_challenge(request, "sign", options.challenge)
    return options_to_json(options)


@dataclass(frozen=True)
class Assertion:
    user: User
    device: PasskeyDevice


def verify_assertion(
    request: HttpRequest, answer: dict[str, Any], *, user: User | None = None
) -> Assertion:
    """Check a signed challenge: the passkey's account (``user`` when given), the signature,
    the origin, user verification and the counter. PasskeyError otherwise, journaled."""
    try:
        return _verify_assertion(request, answer, user)
    except PasskeyError as exc:
        # Journaled against the passkey's account when the answer named one of its
        # passkeys (the holder sees it on the account page), else against nobody.
        journal.record(
            "login.failed" if user is None else "account.passkey_refused",
            actor=user,
            obj=user or exc.owner,
            request=request,
            step="passkey",
        )
        raise


def _verify_assertion(request: HttpRequest, answer: dict[str, Any], user: User | None) -> Assertion:
    refused = _("Cette clé d'accès n'a pas été acceptée.")
    challenge = _take_challenge(request, "sign")
    credential = _credential(answer)
    device = (
        PasskeyDevice.objects.select_related("user")
        .filter(credential_id=credential["id"][:1400], confirmed=True)
        .first()
    )
    if device is None or (user is not None and device.user_id != user.pk):
        raise PasskeyError(refused)
    owner = device.user
    try:
        return _check_signature(device, owner, challenge, credential, refused)
    except PasskeyError as exc:
        exc.owner = owner
        raise


def _check_signature(
    device: PasskeyDevice,
    owner: User,
    challenge: bytes,
    credential: dict[str, Any],
    refused: str,
) -> Assertion:
    if owner.status != User.Status.ACTIVE:
        raise PasskeyError(refused)
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if handle:
        # A discoverable credential names its account: it must be the passkey's.
        try:
            matches = hmac.compare_digest(base64url_to_bytes(str(handle)), user_handle(owner))
        except (ValueError, TypeError):
            matches = False
        if not matches:
            raise PasskeyError(refused)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=expected_origins(),
            credential_public_key=bytes(device.public_key),
            credential_current_sign_count=device.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        log.info("passkey %s refused: %s", device.pk, type(exc).__name__)
        raise PasskeyError(refused) from None
    # Conditional update: of two requests racing with the same answer, one wins (a
    # counter that stays at 0 is an authenticator that keeps none, allowed by the spec).
    won = PasskeyDevice.objects.filter(pk=device.pk, sign_count=device.sign_count).update(
        sign_count=verified.new_sign_count, last_used_at=timezone.now()
    )
    if not won:
        raise PasskeyError(refused)
    device.refresh_from_db(fields=["sign_count", "last_used_at"])
    return Assertion(owner, device)


def mark_strong(request: HttpRequest) -> None:
    """This session has just been proved with a passkey (phishing-resistant)."""
    request.session[STRONG_FACTOR] = "passkey"


def confirm(request: HttpRequest, user: User, answer: dict[str, Any]) -> PasskeyDevice:
    """A signed-in holder proves the session again with one of their passkeys."""
    assertion = verify_assertion(request, answer, user=user)
    mark_strong(request)
    journal.record(
        "account.passkey_confirmed",
        actor=user,
        obj=user,
        request=request,
        passkey=assertion.device.pk,
    )
    return assertion.device


# --- Managing them -----------------------------------------------------------------------------


def get_passkey(user: User, passkey_id: int) -> PasskeyDevice:
    """One of the holder's passkeys; another's is the same as none (PasskeyError → 404)."""
    device = PasskeyDevice.objects.filter(pk=passkey_id, user=user, confirmed=True).first()
    if device is None:
        raise LookupError(passkey_id)
    return device


@transaction.atomic
def rename(
    user: User, passkey_id: int, name: object, *, request: HttpRequest | None = None
) -> PasskeyDevice:
    """Give one of the holder's passkeys a new name."""
    device = get_passkey(user, passkey_id)
    device.name = clean_name(name)
    device.save(update_fields=["name"])
    journal.record(
        "account.passkey_renamed", actor=user, obj=user, request=request, passkey=device.pk
    )
    services.notify(user, "passkey_renamed")
    return device


@transaction.atomic
def revoke(user: User, passkey_id: int, *, request: HttpRequest | None = None) -> None:
    """Remove one of the holder's passkeys: it no longer signs anything in."""
    device = get_passkey(user, passkey_id)
    pk = device.pk
    device.delete()
    journal.record("account.passkey_removed", actor=user, obj=user, request=request, passkey=pk)
    services.notify(user, "passkey_removed")
