"""Writing: a structured document (IHE XDM) made from a draft's files, for one patient."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.access import verified_required
from accounts.models import PatientIdentity
from mailboxes import selectors, services
from mailboxes.forms import XdmForm
from mailboxes.models import Draft, Folder
from mailboxes.services.structured import XML_TYPES
from mailboxes.views._common import current_user, render_webmail
from mailboxes.views.compose import draft_url
from mssante.lib import xdm


def _xdm_files(draft: Draft) -> list[tuple[int, str]]:
    return [
        (f.pk, f.filename)
        for f in draft.files.order_by("pk")
        if f.filename.lower().endswith((".pdf", ".xml"))
        or f.content_type.lower() in ("application/pdf", *XML_TYPES)
    ]


def _patient_label(identity: PatientIdentity) -> str:
    return f"{identity.first_names} {identity.birth_name} — {identity.birth_date:%d/%m/%Y} — INS {identity.ins}"


def _xdm_patient(form: XdmForm, patients: dict[int, PatientIdentity]) -> xdm.Patient:
    data = form.cleaned_data
    identity = patients.get(data["patient"]) if data.get("patient") else None
    if identity is not None:
        return xdm.Patient(
            ins=identity.ins,
            oid=identity.oid,
            birth_name=identity.birth_name,
            first_names=identity.first_names,
            birth_date=identity.birth_date.strftime("%Y%m%d"),
            sex=identity.sex,
            qualified=identity.qualified,
        )
    return xdm.Patient(
        ins=data["ins"],
        oid=data["oid"],
        birth_name=data["birth_name"].strip().upper(),
        first_names=data["first_names"].strip(),
        birth_date=data["birth_date"].strftime("%Y%m%d"),
        sex=data["sex"],
        qualified=bool(data.get("qualified")),
    )


@verified_required("professional")
@require_http_methods(["GET", "POST"])
def draft_xdm_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    """ "Joindre au dossier du patient": build IHE_XDM.ZIP into the draft, record its headers."""
    user = current_user(request)
    draft = selectors.get_draft(user, draft_id)
    content = services.open_draft(draft)
    known = selectors.patients_written_to(draft.mailbox, content.to + content.cc)
    patients = {p.pk: p for p in known}
    recipients = [
        r.identity
        for r in selectors.patients_among(content.to + content.cc)
        if r.identity is not None
    ]
    choices = [(p.pk, _patient_label(p)) for p in known]
    files = _xdm_files(draft)
    form = XdmForm(
        request.POST if request.method == "POST" else None,
        patients=choices,
        files=files,
        # The one patient among the recipients, if there is one, is proposed first.
        initial={"patient": recipients[0].pk if len(recipients) == 1 else None},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.attach_xdm_package(
                draft,
                by=user,
                patient=_xdm_patient(form, patients),
                type_code=form.cleaned_data["type_code"],
                attachment_ids=form.cleaned_data.get("attachments") or [],
                uploads=request.FILES.getlist("files"),
            )
        except services.DraftError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Documents joints au dossier du patient (IHE_XDM.ZIP)."))
            return redirect(draft_url(draft))
    return render_webmail(
        request,
        "mailboxes/xdm.html",
        draft.mailbox,
        {"draft": draft, "form": form, "has_files": bool(files)},
        current_folder=selectors.system_folder(draft.mailbox, Folder.Role.DRAFTS),
        status=400 if request.method == "POST" else 200,
    )
