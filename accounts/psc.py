"""Pro Santé Connect: the OpenID Connect client (code flow + PKCE) and what its answer means.

Authlib does the protocol: the state and the nonce kept in the session and checked on
return, the PKCE verifier (S256), the code exchanged with the client's secret, the ID
token's signature (the provider's published keys), issuer, audience, expiry and nonce.
This module adds what is PSC's own: the national id (``SubjectNameID``) read from the
userinfo answer, whose ``sub`` must be the ID token's, and the level of the sign-in (CPS
card, e-CPS or unknown) read from the ``amr`` values of the ID token.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.django_client import OAuth
from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.translation import gettext as _
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

# The session key holding the PSC facts of the current sign-in (level, acr, amr, ID token).
SESSION_KEY = "psc"

LEVEL_CARD = "cps"
LEVEL_ECPS = "ecps"
LEVEL_UNKNOWN = "inconnu"

# A national id: "8" + RPPS (12 digits) or "0" + Adeli (10); nothing else is looked up.
NATIONAL_ID = re.compile(r"^[0-9]{10,12}$")


class PscError(Exception):
    """The sign-in through PSC did not go through; ``reason`` is a stable code for the journal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        """What the login page says, in the reader's language."""
        if self.reason == "provider":
            return _(
                "Pro Santé Connect ne répond pas pour le moment. Réessayez dans quelques "
                "minutes, ou connectez-vous avec votre identifiant, votre mot de passe et "
                "un code à usage unique."
            )
        if self.reason == "denied":
            return _(
                "La connexion avec Pro Santé Connect a été annulée ou refusée. Vous pouvez "
                "réessayer, ou vous connecter avec votre identifiant et votre mot de passe."
            )
        if self.reason == "state":
            return _(
                "Cette réponse de Pro Santé Connect ne correspond à aucune connexion en cours "
                "dans ce navigateur (lien expiré, rejoué ou ouvert ailleurs). Recommencez la "
                "connexion depuis cette page."
            )
        if self.reason == "code":
            return _(
                "Pro Santé Connect a refusé de confirmer cette connexion : son autorisation a "
                "expiré ou a déjà servi. Recommencez la connexion depuis cette page."
            )
        return _(
            "La réponse de Pro Santé Connect n'a pas pu être vérifiée : par sécurité, la "
            "connexion est refusée. Recommencez, ou connectez-vous avec votre identifiant et "
            "votre mot de passe."
        )


@dataclass(frozen=True)
class PscIdentity:
    """Who PSC says signed in, and how."""

    national_id: str
    subject: str
    acr: str
    amr: tuple[str, ...]
    level: str
    id_token: str

    def session_data(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "acr": self.acr,
            "amr": list(self.amr),
            "id_token": self.id_token,
            "at": time.time(),
        }


def enabled() -> bool:
    return bool(settings.PSC_ENABLED)


def level_of(amr: tuple[str, ...]) -> str:
    """CPS card, e-CPS or unknown, from the amr values (settings PSC_CARD_AMR / PSC_ECPS_AMR)."""
    values = set(amr)
    if values & set(settings.PSC_CARD_AMR):
        return LEVEL_CARD
    if values & set(settings.PSC_ECPS_AMR):
        return LEVEL_ECPS
    return LEVEL_UNKNOWN


def is_strong(level: str) -> bool:
    """Whether this level stands for both factors (setting PSC_STRONG_LEVELS)."""
    return level != LEVEL_UNKNOWN and level in settings.PSC_STRONG_LEVELS


# One Authlib client per configuration: it keeps the provider's metadata and keys once
# fetched (a provider that did not answer is asked again next time).
_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()


def _client() -> Any:
    key = (
        settings.PSC_ISSUER,
        settings.PSC_CLIENT_ID,
        settings.PSC_CLIENT_SECRET,
        settings.PSC_SCOPES,
        str(settings.PSC_TIMEOUT_SECONDS),
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            oauth = OAuth()
            client = oauth.register(
                name="psc",
                client_id=settings.PSC_CLIENT_ID,
                client_secret=settings.PSC_CLIENT_SECRET,
                server_metadata_url=f"{settings.PSC_ISSUER}/.well-known/openid-configuration",
                client_kwargs={
                    "scope": settings.PSC_SCOPES,
                    "code_challenge_method": "S256",
                    "default_timeout": settings.PSC_TIMEOUT_SECONDS,
                },
            )
            _clients[key] = client
        return client


def start(request: HttpRequest, redirect_uri: str) -> HttpResponseRedirect:
    """The redirection to PSC's authorization endpoint (state, nonce and PKCE kept in the session)."""
    try:
        response: HttpResponseRedirect = _client().authorize_redirect(
            request, redirect_uri, acr_values=settings.PSC_ACR_VALUES
        )
    except (requests.RequestException, ValueError) as exc:
        log.warning("PSC: metadata unavailable (%s)", type(exc).__name__)
        raise PscError("provider") from exc
    return response


def finish(request: HttpRequest) -> PscIdentity:
    """Check PSC's answer on the callback and return who signed in (PscError otherwise)."""
    if request.GET.get("error"):
        raise PscError("denied")
    if not request.GET.get("state") or not request.GET.get("code"):
        raise PscError("state")
    client = _client()
    try:
        token = client.authorize_access_token(request)
    except MismatchingStateError as exc:
        raise PscError("state") from exc
    except OAuthError as exc:
        # The token endpoint refused the code (invalid_grant: expired, used, not ours).
        log.info("PSC: token refused (%s)", exc.error)
        raise PscError("code") from exc
    except (JoseError, AuthlibBaseError, KeyError) as exc:
        # Before ValueError: a JOSE error may be one too, and it is no outage.
        log.warning("PSC: ID token rejected (%s)", type(exc).__name__)
        raise PscError("token") from exc
    except (requests.RequestException, ValueError) as exc:
        log.warning("PSC: token endpoint unavailable (%s)", type(exc).__name__)
        raise PscError("provider") from exc
    claims = token.get("userinfo")
    id_token = token.get("id_token")
    if not claims or not isinstance(id_token, str):
        raise PscError("token")
    userinfo = _userinfo(client, token)
    if userinfo.get("sub") != claims.get("sub"):
        # OpenID Connect Core 5.3.2: a userinfo answer about someone else is not used.
        raise PscError("token")
    national_id = userinfo.get("SubjectNameID", claims.get("SubjectNameID"))
    if not isinstance(national_id, str) or not NATIONAL_ID.match(national_id.strip()):
        raise PscError("token")
    raw_amr = claims.get("amr") or ()
    amr = tuple(str(v)[:32] for v in raw_amr[:10]) if isinstance(raw_amr, list) else ()
    return PscIdentity(
        national_id=national_id.strip(),
        subject=str(claims["sub"])[:255],
        acr=str(claims.get("acr", ""))[:64],
        amr=amr,
        level=level_of(amr),
        id_token=id_token,
    )


def _userinfo(client: Any, token: dict[str, Any]) -> dict[str, Any]:
    """The userinfo answer, as JSON or as a JWT signed with the provider's keys."""
    try:
        metadata = client.load_server_metadata()
        response = client.get(metadata["userinfo_endpoint"], token=token)
        response.raise_for_status()
        if response.headers.get("content-type", "").startswith("application/jwt"):
            keys = KeySet.import_key_set(client.fetch_jwk_set())
            return dict(jwt.decode(response.text, keys).claims)
        data = response.json()
    except (JoseError, AuthlibBaseError) as exc:
        raise PscError("token") from exc
    except (requests.RequestException, ValueError, KeyError) as exc:
        log.warning("PSC: userinfo unavailable (%s)", type(exc).__name__)
        raise PscError("provider") from exc
    if not isinstance(data, dict):
        raise PscError("token")
    return data


def end_session_url(request: HttpRequest, post_logout_redirect_uri: str) -> str:
    """Where to send the browser so that PSC ends its session too ("" when not signed in by PSC).

    RP-initiated logout 1.0: the ID token of this sign-in as the hint, and the page to come
    back to. A provider that does not answer leaves only the local logout (said in the log).
    """
    data = request.session.get(SESSION_KEY)
    if not enabled() or not isinstance(data, dict) or not data.get("id_token"):
        return ""
    try:
        endpoint = _client().load_server_metadata().get("end_session_endpoint")
    except (requests.RequestException, ValueError) as exc:
        log.warning("PSC: no end-session endpoint, local logout only (%s)", type(exc).__name__)
        return ""
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return ""
    query = urlencode(
        {
            "id_token_hint": data["id_token"],
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "client_id": settings.PSC_CLIENT_ID,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
