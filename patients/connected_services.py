"""Connected services: which applications may write to a patient, and the rule that enforces it.

The catalogue (DOMAIN.md: "only a professional or establishment opens a conversation",
an applicative box being an establishment's software) is every active applicative box
of this operator, plus any applicative box that already wrote to the patient or that
the patient refused. By default a service may write; the patient revokes it and may
allow it again. The refusal is a rule of ``submit_message`` (``mailboxes.hooks``), so it
holds whatever the door (API, web compose of one of the box's members, command): the
sender gets the French reason, the API answers it as ``422 refused``.

Messages arriving from other operators' applications over SMTP are not covered: see
docs/decisions.md, "Services connectés".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes import addresses
from mailboxes.models import Mailbox, Message
from mailboxes.services.errors import SubmissionError
from patients.models_services import ServiceChange, ServiceRevocation


def _kind_label(content_type: str, filename: str) -> str:
    content_type = content_type.lower()
    if filename.upper() == "IHE_XDM.ZIP":
        return _("documents structurés (IHE XDM)")
    if content_type == "application/pdf":
        return _("comptes rendus PDF")
    if content_type.startswith("image/"):
        return _("images")
    if content_type.startswith("text/"):
        return _("documents texte")
    return _("autres documents")


@dataclass
class Service:
    """One application of the catalogue, as the patient sees it."""

    box: Mailbox
    revoked_at: datetime | None
    sent: int = 0
    last_sent: datetime | None = None
    kinds: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.revoked_at is None

    @property
    def name(self) -> str:
        return self.box.display_name or self.box.address

    @property
    def organisation(self) -> str:
        return self.box.organisation.name if self.box.organisation else ""


def _services_of(box: Mailbox) -> Q:
    wrote = Message.objects.filter(
        deliveries__mailbox=box, sender_mailbox__kind=Mailbox.Kind.APPLICATIVE
    ).values("sender_mailbox_id")
    refused = ServiceRevocation.objects.filter(patient_box=box).values("service_id")
    return Q(kind=Mailbox.Kind.APPLICATIVE) & (
        Q(status=Mailbox.Status.ACTIVE) | Q(pk__in=wrote) | Q(pk__in=refused)
    )


def catalogue(box: Mailbox) -> list[Service]:
    """The applications that may write to the patient of ``box``, with the patient's choice."""
    services = list(
        Mailbox.objects.select_related("organisation").filter(_services_of(box)).order_by("pk")
    )
    revoked = dict(
        ServiceRevocation.objects.filter(patient_box=box).values_list("service_id", "revoked_at")
    )
    out = {s.pk: Service(box=s, revoked_at=revoked.get(s.pk)) for s in services}
    sent = (
        Message.objects.filter(deliveries__mailbox=box, sender_mailbox_id__in=list(out))
        .only("sender_mailbox_id", "date", "attachments")
        .order_by("date", "pk")
    )
    for message in sent:
        item = out[message.sender_mailbox_id]  # type: ignore[index]
        item.sent += 1
        item.last_sent = message.date
        for attachment in message.attachments or []:
            if isinstance(attachment, dict):
                label = _kind_label(
                    str(attachment.get("content_type", "")), str(attachment.get("filename", ""))
                )
                if label not in item.kinds:
                    item.kinds.append(label)
    return sorted(out.values(), key=lambda s: (s.organisation.lower(), s.name.lower()))


def get_service(box: Mailbox, service_id: int) -> Mailbox:
    """A service of this patient's catalogue, or 404 (any other box does not exist here)."""
    service = Mailbox.objects.filter(_services_of(box), pk=service_id).first()
    if service is None:
        raise Http404
    return service


def changes(box: Mailbox | None) -> list[ServiceChange]:
    """The patient's choices for connected services, newest first (for "Mes échanges")."""
    if box is None:
        return []
    return list(
        ServiceChange.objects.select_related("service__organisation")
        .filter(patient_box=box)
        .order_by("-at", "-pk")[:500]
    )


# --- Writes --------------------------------------------------------------------------------


@transaction.atomic
def set_allowed(
    box: Mailbox,
    service: Mailbox,
    *,
    allowed: bool,
    by: User,
    request: HttpRequest | None = None,
) -> bool:
    """Allow or revoke ``service`` for the patient of ``box``; True when something changed.

    Journaled (``patient.service_allowed`` / ``patient.service_revoked``) and kept as a
    ``ServiceChange`` for "Mes échanges de données". Doing again what is done changes nothing.
    """
    if box.kind != Mailbox.Kind.PATIENT or service.kind != Mailbox.Kind.APPLICATIVE:
        raise Http404
    current = ServiceRevocation.objects.select_for_update().filter(patient_box=box, service=service)
    if allowed:
        changed = current.delete()[0] > 0
    else:
        _row, changed = ServiceRevocation.objects.get_or_create(
            patient_box=box, service=service, defaults={"revoked_by": by}
        )
    if changed:
        ServiceChange.objects.create(patient_box=box, service=service, allowed=allowed, by=by)
        journal.record(
            "patient.service_allowed" if allowed else "patient.service_revoked",
            actor=by,
            obj=box,
            request=request,
            service=service.address,
        )
    return changed


# --- The rule (a rule of submit_message, added by PatientsConfig) ---------------------------


def check_submission(
    *,
    mailbox: Mailbox,
    recipients: Sequence[str],
    in_reply_to: Message | None,
    author: User | None = None,
) -> None:
    """Refuse a message of an applicative box to a patient who revoked it."""
    if mailbox.kind != Mailbox.Kind.APPLICATIVE:
        return
    patients = [a.lower() for a in recipients if addresses.is_patient_address(a)]
    if not patients:
        return
    refused = (
        ServiceRevocation.objects.filter(service=mailbox, patient_box__address__in=patients)
        .values_list("patient_box__address", flat=True)
        .order_by("patient_box__address")
    )
    if refused:
        raise SubmissionError(
            _(
                "Le patient %(addresses)s a retiré à « %(service)s » l'autorisation de lui "
                "écrire (Services connectés de son espace santé) : le message n'est pas "
                "envoyé. Contactez le patient par un autre moyen."
            )
            % {"addresses": ", ".join(refused), "service": mailbox.display_name or mailbox.address}
        )
