"""Why a delivery is where it is: a stable code and its parameters, written in words on display.

A ``Delivery`` stores ``reason`` (a code below) and ``reason_params`` (plain JSON
values: a domain, a host, the remote server's reply, a nested reason). The sentence is
made when it is shown (the timeline, the API, the admin, a DSN), with gettext in the
reader's language; code compares codes, never sentences. A remote server's reply is
quoted as it was given, untranslated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from django.utils.translation import gettext, gettext_noop, ngettext

# Where a delivery stands (top-level codes, stored in Delivery.reason).
SENDING: Final = "sending"  # claimed by an outbound task (also the claim's marker)
QUARANTINED: Final = "quarantined"  # the message is held by the antivirus
INFECTED: Final = "infected"
UNSCANNABLE: Final = "unscannable"
MAILBOX_UNAVAILABLE: Final = "mailbox_unavailable"  # a box of ours that is gone or closed
UNREACHABLE: Final = "unreachable"  # domain, problem (nested)
REMOTE_REPLY: Final = "remote_reply"  # domain, reply (the server's SMTP answer)
GAVE_UP: Final = "gave_up"  # attempts, hours, last (nested)
ABANDONED: Final = "abandoned"  # last (nested, may be absent): staff gave it up (admin)
REPORTED_FAILURE: Final = "reported_failure"  # domain, diagnostic (a DSN from the peer)
QUARANTINE_NOTICE: Final = "quarantine_notice"  # cause (nested: infected, unscannable)
LEGACY: Final = "legacy"  # text: a sentence stored before codes, shown as it was

# Why no server of a domain could be talked to (nested under UNREACHABLE).
NO_SUCH_DOMAIN: Final = "no_such_domain"  # domain
NULL_MX: Final = "null_mx"  # domain
MX_LOOKUP_FAILED: Final = "mx_lookup_failed"  # domain, error
NO_SERVER: Final = "no_server"  # domain
CONNECTION_FAILED: Final = "connection_failed"  # host, error
NO_STARTTLS: Final = "no_starttls"  # host
CERTIFICATE_NOT_LISTED: Final = "certificate_not_listed"  # host, subject, domain
INTERRUPTED: Final = "interrupted"  # host, error
INTERNAL_ERROR: Final = "internal_error"  # error

_TEXTS: Final[dict[str, str]] = {
    SENDING: gettext_noop("Envoi en cours vers le serveur de l'opérateur destinataire."),
    QUARANTINED: gettext_noop("message retenu en quarantaine par l'antivirus"),
    INFECTED: gettext_noop("virus détecté dans une pièce jointe"),
    UNSCANNABLE: gettext_noop("message impossible à analyser par l'antivirus"),
    MAILBOX_UNAVAILABLE: gettext_noop("La boîte du destinataire n'existe plus ou est fermée."),
    UNREACHABLE: gettext_noop("Serveur de %(domain)s injoignable : %(problem)s"),
    REMOTE_REPLY: gettext_noop("Le serveur de %(domain)s a répondu : %(reply)s"),
    ABANDONED: gettext_noop("Distribution abandonnée par l'équipe de l'opérateur."),
    REPORTED_FAILURE: gettext_noop(
        "Le serveur de %(domain)s signale un échec de distribution : %(diagnostic)s"
    ),
    QUARANTINE_NOTICE: gettext_noop("message retenu en quarantaine par l'antivirus (%(cause)s)"),
    LEGACY: "%(text)s",
    NO_SUCH_DOMAIN: gettext_noop("le domaine %(domain)s n'existe pas (DNS)"),
    NULL_MX: gettext_noop("le domaine %(domain)s n'accepte pas de courrier (MX nul)"),
    MX_LOOKUP_FAILED: gettext_noop("recherche MX de %(domain)s impossible (%(error)s)"),
    NO_SERVER: gettext_noop("aucun serveur joignable pour %(domain)s"),
    CONNECTION_FAILED: gettext_noop("connexion à %(host)s impossible (%(error)s)"),
    NO_STARTTLS: gettext_noop("%(host)s ne propose pas STARTTLS"),
    CERTIFICATE_NOT_LISTED: gettext_noop(
        "le certificat de %(host)s (%(subject)s) n'est pas inscrit sur la liste blanche "
        "pour %(domain)s"
    ),
    INTERRUPTED: gettext_noop("échange avec %(host)s interrompu (%(error)s)"),
    INTERNAL_ERROR: gettext_noop("erreur interne (%(error)s)"),
}

# A technical reply, for the machine part of a DSN (ASCII, English, like our SMTP replies).
_DIAGNOSTICS: Final[dict[str, str]] = {
    QUARANTINED: "message held in quarantine by the antivirus",
    ABANDONED: "delivery cancelled by the operator",
    INFECTED: "virus found in the message",
    UNSCANNABLE: "message could not be scanned by the antivirus",
    QUARANTINE_NOTICE: "message held in quarantine by the antivirus",
    MAILBOX_UNAVAILABLE: "no active mailbox at this address",
    NO_SUCH_DOMAIN: "domain not found (DNS)",
    NULL_MX: "domain accepts no mail (null MX)",
    MX_LOOKUP_FAILED: "MX lookup failed",
    NO_SERVER: "no server reachable",
    CONNECTION_FAILED: "connection failed",
    NO_STARTTLS: "server does not offer STARTTLS",
    CERTIFICATE_NOT_LISTED: "server certificate not on the liste blanche for the domain",
    INTERRUPTED: "connection interrupted",
    INTERNAL_ERROR: "internal error",
}


@dataclass(frozen=True)
class Reason:
    """A code and its parameters; a parameter may itself be a reason (``problem``, ``last``)."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_params(self) -> dict[str, Any]:
        """The JSON stored in ``Delivery.reason_params`` (nested reasons as dicts)."""
        return {
            k: ({"code": v.code, **v.as_params()} if isinstance(v, Reason) else v)
            for k, v in self.params.items()
        }

    def text(self) -> str:
        """The sentence, in the active language."""
        return describe(self.code, self.as_params())

    def diagnostic(self) -> str:
        """A short English reply for the machine part of a DSN."""
        nested = [v for v in self.params.values() if isinstance(v, Reason)]
        if self.code == GAVE_UP:
            return "delivery time expired" + (f", {nested[0].diagnostic()}" if nested else "")
        if self.code in _DIAGNOSTICS:
            return _DIAGNOSTICS[self.code]
        if nested:
            return nested[0].diagnostic()
        return self.code.replace("_", " ")


def describe(code: str, params: Mapping[str, Any] | None) -> str:
    """The sentence for a stored reason, in the active language ("" for no reason)."""
    if not code:
        return ""
    values: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if isinstance(value, Mapping):
            value = describe(str(value.get("code") or ""), value)
        values[key] = value
    if code == GAVE_UP:
        attempts = int(values.get("attempts") or 0)
        return ngettext(
            "Non distribué après %(attempts)s essai en %(hours)s heures. "
            "Dernière erreur : %(last)s",
            "Non distribué après %(attempts)s essais en %(hours)s heures. "
            "Dernière erreur : %(last)s",
            attempts,
        ) % {"attempts": attempts, "hours": values.get("hours", ""), "last": values.get("last", "")}
    if code == ABANDONED and values.get("last"):
        return gettext(
            "Distribution abandonnée par l'équipe de l'opérateur. Dernière erreur : %(last)s"
        ) % {"last": values["last"]}
    template = _TEXTS.get(code)
    if template is None:
        # A code this version does not know (written by a newer one): say what there is.
        return str(values.get("text") or code)
    translated = gettext(template) if template != "%(text)s" else template
    if "%(" not in template:
        return translated
    try:
        return translated % values
    except (KeyError, TypeError, ValueError):
        return translated  # a row missing a parameter: the sentence, with its gap shown
