"""Creating, revoking and checking application passwords (every use journaled).

A client signs in with a mailbox address and an application password. The password
designates its holder; the address designates the box the session works in, which the
password must cover (its one box, or any box its holder may use with the rights they
have there). Wrong passwords are counted like wrong web logins (``accounts.lockout``):
per client address (django-axes) and across addresses, keyed on the box's address.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import lockout
from accounts.models import User
from audit import journal
from clients.models import AppPassword
from mailboxes import addresses, selectors
from mailboxes.models import Mailbox
from mailboxes.selectors import Access

# Unambiguous characters (no 0/o, 1/l/i): read off a screen and typed into a device.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_GROUPS, _GROUP = 4, 6  # 24 characters, log2(31) x 24 = 119 bits
MAX_LIVE_PER_USER = 20
_NEED = {AppPassword.Protocol.IMAP: Access.READ, AppPassword.Protocol.SMTP: Access.SEND}


class AppPasswordError(Exception):
    """A request about application passwords that cannot be done (the French reason)."""


class ClientAuthError(Exception):
    """A client's sign-in refused; the French text is what the client is told."""


def _normalise(raw: str) -> str:
    return "".join(raw.split()).replace("-", "").lower()


def hash_secret(raw: str) -> str:
    return hashlib.sha256(_normalise(raw).encode()).hexdigest()


def _new_secret() -> str:
    chars = [secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP)]
    return "-".join("".join(chars[i : i + _GROUP]) for i in range(0, len(chars), _GROUP))


def _may_use(user: User, mailbox: Mailbox, scope: str) -> bool:
    level = selectors.access(user, mailbox)
    if level is None:
        return False
    need = Access.SEND if scope in (AppPassword.Scope.SMTP,) else Access.READ
    return level >= need


@transaction.atomic
def create_app_password(
    user: User,
    *,
    label: str,
    scope: str,
    mailbox: Mailbox | None,
    request: HttpRequest | None = None,
) -> tuple[AppPassword, str]:
    """A new application password for ``user``; returns it with its secret, shown once.

    The view asks for the second factor again before calling this.
    """
    label = " ".join(label.split())
    if not label:
        raise AppPasswordError(_("Nommez l'appareil ou le logiciel (par exemple « Cabinet »)."))
    if len(label) > 100:
        raise AppPasswordError(_("Nom trop long : 100 caractères au plus."))
    if scope not in AppPassword.Scope.values:
        raise AppPasswordError(_("Usage inconnu."))
    if mailbox is not None:
        if not mailbox.is_active:
            raise AppPasswordError(
                _("La boîte %(address)s est fermée.") % {"address": mailbox.address}
            )
        if not _may_use(user, mailbox, scope):
            raise AppPasswordError(
                _("Vous n'avez pas les droits nécessaires sur %(address)s.")
                % {"address": mailbox.address}
            )
    now = timezone.now()
    # Serialise one user's creations: the count below holds.
    User.objects.select_for_update().filter(pk=user.pk).first()
    live = AppPassword.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=now
    ).count()
    if live >= MAX_LIVE_PER_USER:
        raise AppPasswordError(
            _(
                "Vous avez déjà %(count)d mots de passe d'application : révoquez ceux qui ne servent plus."
            )
            % {"count": live}
        )
    raw = _new_secret()
    password = AppPassword.objects.create(
        user=user,
        mailbox=mailbox,
        label=label,
        scope=scope,
        token_hash=hash_secret(raw),
        created_at=now,
        expires_at=now + timedelta(days=settings.APP_PASSWORD_DAYS),
    )
    journal.record(
        "app_password.created",
        actor=user,
        obj=password,
        request=request,
        scope=scope,
        mailbox=mailbox.address if mailbox else "*",
    )
    return password, raw


@transaction.atomic
def revoke_app_password(
    password: AppPassword, *, by: User, request: HttpRequest | None = None
) -> AppPassword:
    """Stop a password at once (its holder, or staff from the admin)."""
    if by.pk != password.user_id and not (by.kind == User.Kind.STAFF and by.is_staff):
        raise AppPasswordError(_("Ce mot de passe d'application n'est pas le vôtre."))
    password = AppPassword.objects.select_for_update().get(pk=password.pk)
    if password.revoked_at is None:
        password.revoked_at = timezone.now()
        password.save(update_fields=["revoked_at"])
        journal.record("app_password.revoked", actor=by, obj=password, request=request)
    return password


# --- Signing in from a client ------------------------------------------------------------


@dataclass(frozen=True)
class ClientLogin:
    """A client signed in: who, with which password, in which box, with which right."""

    user: User
    password: AppPassword
    mailbox: Mailbox
    access: Access

    def boxes(self) -> list[Mailbox]:
        """The boxes this session may open: the password's one box, or all the user's."""
        if self.password.mailbox_id is not None:
            return [self.mailbox]
        return list(selectors.accessible_mailboxes(self.user).filter(status=Mailbox.Status.ACTIVE))


def _request(ip: str, protocol: str) -> HttpRequest:
    """What the login counters read of a client: its address (no browser, no cookie)."""
    request = HttpRequest()
    request.META = {"REMOTE_ADDR": ip, "HTTP_USER_AGENT": protocol.upper()}
    return request


def _target(address: str, box: Mailbox | None) -> lockout.Target:
    holder = box.owner if box is not None and box.kind == Mailbox.Kind.PERSONAL else None
    return lockout.Target(f"client:{address}"[:160], holder)


REFUSED = gettext_noop(
    "Identifiants refusés : utilisez l'adresse de la boîte et un mot de passe "
    "d'application créé dans le webmail (Logiciels et appareils)."
)


def _box_of(username: str) -> tuple[str, Mailbox | None]:
    try:
        address = addresses.normalise(username)
    except addresses.AddressError:
        return " ".join(str(username).split())[:100], None
    return address, Mailbox.objects.filter(address=address).first()


def authenticate(username: str, secret: str, *, protocol: str, ip: str) -> ClientLogin:
    """Check a client's address and application password; ``ClientAuthError`` when refused."""
    address, box = _box_of(username)
    key = _target(address, box)
    request = _request(ip, protocol)
    if lockout.is_locked(request, key):
        raise ClientAuthError(
            _("Trop d'essais depuis votre adresse : réessayez dans quelques minutes.")
        )
    claim = lockout.claim_attempt(request, key)
    if not claim.allowed:
        raise ClientAuthError(_("Trop d'essais pour cette boîte : réessayez plus tard."))
    now = timezone.now()
    password = (
        AppPassword.objects.select_related("user", "mailbox")
        .filter(token_hash=hash_secret(secret or ""))
        .first()
    )
    level = None
    if (
        password is not None
        and box is not None
        and password.is_live(now)
        and box.is_active
        and password.mailbox_id in (None, box.pk)
    ):
        level = selectors.access(password.user, box)
    ok = (
        password is not None
        and level is not None
        and password.allows(protocol)
        and level >= _NEED[AppPassword.Protocol(protocol)]
        and password.user.is_active
    )
    if not ok or password is None or box is None or level is None:
        user_login_failed.send(
            sender=__name__, credentials={lockout.LOCK_KEY: key.key}, request=request
        )
        lockout.failed(request, key)
        journal.record(
            "app_password.refused",
            actor=None,
            obj=password.user if password is not None else None,
            protocol=protocol,
            ip=ip,
        )
        raise ClientAuthError(_(REFUSED))
    # The writes of a login in one transaction (one commit, not three: each login of a
    # mail client waits on it).
    with transaction.atomic():
        lockout.refund_attempt(request, key)
        AppPassword.objects.filter(pk=password.pk).update(
            last_used_at=now, last_used_ip=ip or None, last_used_protocol=protocol
        )
        journal.record(
            "app_password.used",
            actor=password.user,
            obj=password,
            protocol=protocol,
            mailbox=box.address,
            ip=ip,
        )
    return ClientLogin(password.user, password, box, level)
