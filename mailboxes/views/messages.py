"""Listing, reading and filing messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from html import escape
from html.parser import HTMLParser
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import verified_required
from mailboxes import hooks, listing, remote_images, selectors, services
from mailboxes import search as search_index
from mailboxes.forms import FolderNameForm, MoveForm, SearchForm
from mailboxes.models import Entry, Folder, Mailbox, Message
from mailboxes.services import quarantine, reading
from mailboxes.transport import mdn
from mailboxes.transport.timeline import timeline
from mailboxes.views import structured as structured_docs
from mailboxes.views._common import (
    back_url,
    current_user,
    folder_url,
    mailbox_home_url,
    render_webmail,
)
from mailboxes.views._sorting import list_url, triage_context
from mssante import saved_search
from mssante.lib import mime
from mssante.middleware import content_security_policy

# Types a browser can show without running anything, once sandboxed (see attachments).
PREVIEWABLE = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a message list."""

    entry: Entry
    who: str
    size: str
    folder: str
    # The operator that delivered a message whose From: it may not speak for ("via …").
    via: str = ""
    # Sent from this box: ``who`` names its recipients, not its sender.
    outgoing: bool = False
    # Made here rather than by template tags, 50 times a page: the reading page's URL,
    # the message's date for <time datetime> and as shown (local time).
    url: str = ""
    datetime: str = ""
    date: str = ""
    # A result naming a patient (lab, imaging: Message.patient_ins), and who it is: the
    # name of a known patient, else the INS as people read it (the list's "patient" chip).
    patient_ins: str = ""
    patient: str = ""
    patient_url: str = ""


def author(message: Message) -> str:
    """The sender as a list shows it: the name, unless the name poses as another address."""
    name = message.from_name.strip()
    if not name or ("@" in name and name.lower() != message.from_addr.lower()):
        return message.from_addr
    return name


def rows(entries: list[Entry], *, sent: bool = False) -> list[Row]:
    out = []
    # reverse() once: the reading page's URL differs only by the entry's id.
    read_url = reverse("webmail_read", args=[0])[: -len("0/")]
    names = listing.patient_names(
        {
            e.message.patient_ins
            for e in entries
            if e.message.patient_ins and e.message.sender_mailbox_id != e.mailbox_id
        }
    )
    for entry in entries:
        message = entry.message
        local = timezone.localtime(message.date)
        via = ""
        outgoing = sent or message.sender_mailbox_id == entry.mailbox_id
        if outgoing:
            who = ", ".join(message.to_addrs or []) or _("(aucun destinataire)")
        else:
            who, via = author(message), message.from_via
        ins = "" if outgoing or not listing.is_ins(message.patient_ins) else message.patient_ins
        out.append(
            Row(
                entry,
                who,
                mime.human_size(message.size),
                selectors.folder_label(entry.folder),
                via,
                outgoing,
                url=f"{read_url}{entry.pk}/",
                datetime=local.isoformat(),
                date=local.strftime("%d/%m/%Y %H:%M"),
                patient_ins=ins,
                patient=listing.patient_label(ins, names) if ins else "",
                patient_url=(
                    reverse("webmail_patient_results", args=[entry.mailbox_id, ins]) if ins else ""
                ),
            )
        )
    return out


@verified_required("professional")
@require_GET
def webmail_home(request: HttpRequest) -> HttpResponse:
    """The webmail's landing page: the inbox of the user's own mailbox."""
    mailbox = selectors.default_mailbox(current_user(request))
    if mailbox is None:
        return render(request, "mailboxes/home.html")
    inbox = selectors.system_folder(mailbox, Folder.Role.INBOX)
    if inbox is None:
        return render(request, "mailboxes/home.html")
    return _folder_page(request, inbox)


@verified_required("professional")
@require_GET
def mailbox_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """The switcher's target: the inbox of one of the user's mailboxes."""
    mailbox = selectors.get_mailbox(current_user(request), mailbox_id)
    inbox = selectors.system_folder(mailbox, Folder.Role.INBOX)
    if inbox is None:
        raise Http404
    return _folder_page(request, inbox)


@verified_required("professional")
@require_GET
def folder_view(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = selectors.get_folder(current_user(request), folder_id)
    return _folder_page(request, folder)


def _folder_page(request: HttpRequest, folder: Folder) -> HttpResponse:
    mailbox = folder.mailbox
    if folder.role == Folder.Role.DRAFTS:
        # Drafts are rows of their own (sealed, editable), not entries.
        return render_webmail(
            request,
            "mailboxes/drafts.html",
            mailbox,
            {
                "folder": folder,
                "folder_label": selectors.folder_label(folder),
                "drafts": selectors.drafts(mailbox, current_user(request)),
            },
            current_folder=folder,
        )
    sort = listing.Sort.of(request.GET.get("tri"), request.GET.get("ordre"))
    if sort.is_default:
        page = selectors.folder_page(folder, before=request.GET.get("avant"))
        entries, next_cursor, page_number, more = page.entries, page.next_cursor, 1, False
        is_first_page = not request.GET.get("avant")
    else:
        # Sorted by another column: numbered pages (see listing.sorted_page).
        page_number = listing.parse_page(request.GET.get("page"))
        entries, more = listing.sorted_page(folder, sort, page_number)
        next_cursor, is_first_page = None, page_number == 1
    return render_webmail(
        request,
        "mailboxes/folder.html",
        mailbox,
        {
            "folder": folder,
            "folder_label": selectors.folder_label(folder),
            "rows": rows(entries, sent=folder.role == Folder.Role.SENT),
            "next_cursor": next_cursor,
            "is_first_page": is_first_page,
            **triage_context(request, folder, sort, entries, page_number, more),
            "is_sent": folder.role == Folder.Role.SENT,
            "is_trash": folder.role == Folder.Role.TRASH,
            "is_custom": folder.role == Folder.Role.CUSTOM,
            "rename_form": FolderNameForm(initial={"name": folder.name}, auto_id="rename-%s"),
        },
        current_folder=folder,
    )


def _search_folders(mailbox: Mailbox) -> list[tuple[int, str]]:
    """The folders a search may be narrowed to (drafts are not entries)."""
    return [
        (v.folder.pk, v.label)
        for v in selectors.folders_with_counts(mailbox)
        if v.folder.role != Folder.Role.DRAFTS
    ]


def _terms(data: dict[str, Any]) -> dict[str, Any]:
    """What the session keeps of a valid search form (JSON: dates as ISO strings)."""
    return {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in data.items()
        if value not in (None, "", False)
    }


def _criteria(terms: dict[str, Any]) -> search_index.Criteria:
    """The search a kept form describes (dates in the user's time zone, end day included)."""

    def day(value: Any, shift: int = 0) -> datetime | None:
        try:
            start = datetime.combine(date.fromisoformat(str(value)), time.min)
            return timezone.make_aware(start + timedelta(days=shift))
        except (TypeError, ValueError, OverflowError):
            return None

    folder = terms.get("folder")
    return search_index.Criteria(
        text=str(terms.get("q", "")),
        sender=str(terms.get("sender", "")),
        recipient=str(terms.get("recipient", "")),
        folder_id=folder if isinstance(folder, int) else None,
        unread=bool(terms.get("unread")),
        with_attachments=bool(terms.get("with_attachments")),
        since=day(terms["since"]) if terms.get("since") else None,
        until=day(terms["until"], 1) if terms.get("until") else None,
    )


@verified_required("professional")
@require_http_methods(["GET", "POST"])
def search_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """The search form (GET) and its submission (POST), redirected to the results.

    The terms (often a patient's name) never go in a URL: see mssante.saved_search.
    """
    mailbox = selectors.get_mailbox(current_user(request), mailbox_id)
    folders = _search_folders(mailbox)
    if request.method == "POST":
        form = SearchForm(request.POST, folders=folders)
        if form.is_valid():
            search_id = saved_search.remember(
                request, _search_kind(mailbox.pk), _terms(form.cleaned_data)
            )
            return saved_search.see_results(
                reverse("webmail_search_results", args=[mailbox.pk, search_id])
            )
        return _search_page(request, mailbox, form, None, status=400)
    return _search_page(request, mailbox, SearchForm(folders=folders), None)


@verified_required("professional")
@require_GET
def search_results_view(request: HttpRequest, mailbox_id: int, search_id: str) -> HttpResponse:
    mailbox = selectors.get_mailbox(current_user(request), mailbox_id)
    folders = _search_folders(mailbox)
    terms = saved_search.recall(request, _search_kind(mailbox.pk), search_id)
    if terms is None:
        messages.info(
            request, _("Cette recherche a expiré (ou vient d'une autre session) : relancez-la.")
        )
        return _search_page(request, mailbox, SearchForm(folders=folders), None, status=404)
    # The kept terms pass through the form again: a folder deleted since is refused.
    form = SearchForm(terms, folders=folders)
    if not form.is_valid():
        return _search_page(request, mailbox, form, None, status=400)
    return _search_page(request, mailbox, form, _criteria(_terms(form.cleaned_data)), search_id)


def _search_kind(mailbox_id: int) -> str:
    return f"webmail:{mailbox_id}"


def _search_page(
    request: HttpRequest,
    mailbox: Mailbox,
    form: SearchForm,
    criteria: search_index.Criteria | None,
    search_id: str = "",
    *,
    status: int = 200,
) -> HttpResponse:
    page = selectors.Page(entries=[], next_cursor=None)
    if criteria is not None:
        page = selectors.search(mailbox, criteria, before=request.GET.get("avant"))
    # Results are selectable like any list: file, mark read or archive what was found.
    # The terms stay out of the URLs (the results' URL names the kept search only).
    selection: dict[str, Any] = {}
    if search_id and page.entries:
        back = list_url(request)
        selection = {
            "selectable": True,
            "select_all": request.GET.get("tout") == "1",
            "select_all_url": f"{back}{'&' if '?' in back else '?'}tout=1",
            "back": back,
        }
    return render_webmail(
        request,
        "mailboxes/search.html",
        mailbox,
        {
            "form": form,
            "searched": criteria is not None,
            "query": criteria.text if criteria is not None else "",
            "rows": rows(page.entries),
            "next_cursor": page.next_cursor,
            "is_first_page": not request.GET.get("avant"),
            "results_url": (
                reverse("webmail_search_results", args=[mailbox.pk, search_id]) if search_id else ""
            ),
            **selection,
        },
        status=status,
    )


# --------------------------------------------------------------------------- reading


_HEADING_RE = re.compile(r"<h([1-6])[\s>]", re.IGNORECASE)


def _heading_level(tag: str) -> int | None:
    if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
        return int(tag[1])
    return None


class _ReaderHtml(HTMLParser):
    """Re-serialise sanitised mail HTML to fit the page's outline and be accessible.

    Images: a sanitised ``<img>`` may have lost its source (dropped) and mail rarely
    gives a text alternative (``alt=""``). Headings: the mail's levels are renumbered
    below the page's heading ``base`` without skipping a level, so the page keeps one
    outline (screen reader users navigate by headings). Everything is re-escaped on
    the way out, so this pass can only write back what it read (the input is nh3's
    allow-listed output).
    """

    def __init__(self, levels: list[int], base: int) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.rank = {level: i + 1 for i, level in enumerate(sorted(set(levels)))}
        self.base = base
        self.last = base
        self.open: list[str] = []

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> None:
        level = _heading_level(tag)
        if level is not None:
            wanted = self.base + self.rank.get(level, 1)
            self.last = min(6, wanted, self.last + 1)
            tag = f"h{self.last}"
            if not closed:
                self.open.append(tag)
        if tag == "img":
            names = {name for name, _value in attrs}
            if "src" not in names:
                return
            if "alt" not in names:
                attrs = [*attrs, ("alt", "")]
        rendered = "".join(f' {name}="{escape(value or "")}"' for name, value in attrs)
        self.out.append(f"<{tag}{rendered}>")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def handle_endtag(self, tag: str) -> None:
        if _heading_level(tag) is not None:
            tag = self.open.pop() if self.open else "h6"
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(escape(data, quote=False))


def accessible_html(html: str, *, heading_base: int) -> str:
    """Sanitised HTML with accessible images and headings below level ``heading_base``."""
    levels = [int(n) for n in _HEADING_RE.findall(html)]
    parser = _ReaderHtml(levels, heading_base)
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


# Past this, the text shown is cut (the source stays whole): a page, not a book.
TEXT_SHOWN_MAX = 1_000_000


@dataclass(slots=True)
class ShownMessage:
    """What the reading view shows of one message."""

    entry: Entry
    parsed: mime.ParsedMessage
    html: str | None
    blocked_remote_images: bool
    attachments: list[dict[str, Any]]
    text: str | None = None
    # Why some of the message is not shown (too complex, too big): the reader is
    # offered its source instead.
    notice: str = ""
    # Quarantined by the antivirus and not released: attachments are not offered.
    held: bool = False
    # IHE_XDM.ZIP attachments, read safely: the "Documents structurés" panel.
    structured: list[structured_docs.StructuredPackage] = field(default_factory=list)
    # Cci: the sender's copy alone shows them (from its deliveries: no header carries them).
    bcc: list[str] = field(default_factory=list)


def _shown(entry: Entry, *, remote_images: bool, heading_base: int) -> ShownMessage:
    parsed = services.parse(entry.message)
    html: str | None = None
    blocked = False
    notice = ""
    if parsed.too_complex is not None:
        # Stored before the parsing limits existed: never parsed further (mssante.lib.mime).
        notice = _(
            "Ce message est trop complexe pour être affiché (%(reason)s) : téléchargez sa "
            "source pour l'ouvrir avec un autre logiciel."
        ) % {"reason": _(parsed.too_complex.template) % parsed.too_complex.params}
    if parsed.html and mime.html_too_large(parsed.html):
        notice = _(
            "La mise en forme (HTML) de ce message est trop volumineuse pour être affichée : "
            "seul son texte l'est. Téléchargez sa source pour le voir en entier."
        )
    elif parsed.html:
        # Never the message's own HTML: only what the sanitiser keeps. Remote images,
        # once allowed, come through the portal's proxy, never straight from the page.
        clean = mime.sanitize_html(
            parsed.html,
            allow_remote_images=remote_images,
            remote_image_url=remote_images_url(entry),
        )
        html, blocked = (
            accessible_html(clean.html, heading_base=heading_base),
            clean.blocked_remote_images,
        )
    text = parsed.text
    if text is not None and len(text) > TEXT_SHOWN_MAX:
        text = text[:TEXT_SHOWN_MAX]
        notice = notice or _(
            "Ce message est trop long pour être affiché en entier : téléchargez sa source "
            "pour le lire jusqu'au bout."
        )
    attachments = [
        {
            "index": part.index,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": mime.human_size(part.size),
            "previewable": part.content_type in PREVIEWABLE,
        }
        for part in parsed.attachments
    ]
    held = is_held(entry.message)
    packages = []
    if not held and any(structured_docs.is_package(p.filename) for p in parsed.attachments):
        packages = structured_docs.packages(services.read_raw(entry.message), parsed)
    return ShownMessage(
        entry,
        parsed,
        html,
        blocked,
        attachments,
        text=text,
        notice=notice,
        held=held,
        structured=packages,
        bcc=selectors.blind_copies(entry),
    )


def remote_images_url(entry: Entry) -> Callable[[str], str | None]:
    """The image proxy's URL for each remote image of ``entry`` (see mailboxes.remote_images)."""
    return remote_images.url_maker(entry.pk)


def is_held(message: Message) -> bool:
    """Quarantined by the antivirus and not released by staff."""
    return message.scan_status == Message.ScanStatus.INFECTED and not quarantine.released_ids(
        [message.pk]
    )


def _wants_remote_images(request: HttpRequest) -> bool:
    return request.GET.get("images") == "distantes"


def _allow_remote_images(response: HttpResponse) -> HttpResponse:
    # The user asked for this message's remote images: the page's policy lets the
    # browser fetch images over HTTPS, and nothing else more than on any page.
    response["Content-Security-Policy"] = content_security_policy(img_src="'self' data: https:")
    return response


@verified_required("professional")
@require_GET
def read_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    services.open_entry(entry, by=user)
    # Under the page's h1 (the subject).
    shown = _shown(entry, remote_images=_wants_remote_images(request), heading_base=1)
    level = selectors.access(user, entry.mailbox)
    is_holder = level == selectors.Access.HOLDER
    response = render_webmail(
        request,
        "mailboxes/read.html",
        entry.mailbox,
        {
            "entry": entry,
            "shown": shown,
            "deliveries": selectors.deliveries(entry),
            # The sender's view: each recipient's steps, submitted → … → read.
            "timelines": (
                timeline(entry.message)
                if entry.message.sender_mailbox_id == entry.mailbox_id
                else []
            ),
            # "L'expéditeur demande un accusé de lecture" (reader's preference "sur demande").
            # Answering it sends from the box: asked only of those who may send.
            "receipt_asked": (
                level is not None
                and level >= selectors.Access.SEND
                and bool(mdn.pending_receipts(entry))
            ),
            # A calendar invitation (or a reply to one) it carries: a card (services.reading).
            "invitation": reading.invitation_of(entry, shown.parsed),
            # Notices from the platform's no-reply address: no "Répondre" (views/compose.py).
            "no_reply": selectors.is_no_reply(entry.message),
            "folder_label": selectors.folder_label(entry.folder),
            "thread_size": selectors.thread_size(entry),
            "in_trash": entry.folder.role == Folder.Role.TRASH,
            # "Ouvert par … à …": the holder or responsible sees who did what to it.
            "accesses": selectors.message_accesses(entry) if is_holder else [],
            # What the apps above show of this message (patients: the patient's side).
            "panels": [
                panel(request, entry, can_send=level is not None and level >= selectors.Access.SEND)
                for panel in hooks.reading_panels()
            ],
        },
        current_folder=entry.folder,
    )
    return _allow_remote_images(response) if _wants_remote_images(request) else response


@verified_required("professional")
@require_GET
def remote_image_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """A remote image of a message the user reads, fetched by the portal (see remote_images)."""
    try:
        image = remote_images.fetch(current_user(request), entry_id, request.GET.get("u", ""))
    except remote_images.NotServed:
        raise Http404 from None
    response = HttpResponse(image.data, content_type=image.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response


@verified_required("professional")
@require_GET
def conversation_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    remote = _wants_remote_images(request)
    # Under each message's h2 in the conversation.
    items = [_shown(e, remote_images=remote, heading_base=2) for e in selectors.thread(entry)]
    for item in items:
        services.open_entry(item.entry, by=user)
    response = render_webmail(
        request,
        "mailboxes/conversation.html",
        entry.mailbox,
        {"entry": entry, "items": items},
        current_folder=entry.folder,
    )
    return _allow_remote_images(response) if remote else response


# --------------------------------------------------------------------------- filing


def _after_action(request: HttpRequest, entry: Entry) -> HttpResponse:
    return redirect(back_url(request, folder_url(entry.folder)))


@verified_required("professional")
@require_POST
def flag_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    flagged = request.POST.get("flagged") == "1"
    services.set_flags([entry], by=user, flagged=flagged)
    messages.success(request, _("Message suivi.") if flagged else _("Suivi retiré."))
    return redirect(back_url(request, reverse("webmail_read", args=[entry.pk])))


@verified_required("professional")
@require_POST
def mark_unread_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    services.set_flags([entry], by=user, seen=False)
    messages.success(request, _("Message marqué comme non lu."))
    # Back to the list: staying on the message would mark it read again.
    return redirect(folder_url(entry.folder))


@verified_required("professional")
@require_POST
def move_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    form = MoveForm(request.POST, mailbox_id=entry.mailbox_id)
    if not form.is_valid():
        # A folder id from another mailbox is treated as not found, like any foreign id.
        raise Http404
    target: Folder = form.cleaned_data["folder"]
    services.move_entries([entry], target, by=user)
    messages.success(
        request,
        _("Message déplacé dans « %(folder)s ».") % {"folder": selectors.folder_label(target)},
    )
    return redirect(folder_url(entry.folder))


@verified_required("professional")
@require_POST
def trash_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    origin = entry.folder
    services.trash_entries([entry], by=user)
    messages.success(request, _("Message mis à la corbeille."))
    return redirect(folder_url(origin))


@verified_required("professional")
@require_POST
def restore_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    services.restore_entries([entry], by=user)
    messages.success(request, _("Message restauré."))
    # To the folder it went back to, so the user sees it there.
    entry.refresh_from_db(fields=["folder"])
    return redirect(folder_url(entry.folder))


@verified_required("professional")
@require_POST
def empty_trash_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    user = current_user(request)
    # Emptying the trash destroys messages for everyone: managers and the holder only.
    mailbox = selectors.get_mailbox(user, mailbox_id, selectors.Access.MANAGE)
    services.empty_trash(mailbox, by=user)
    messages.success(request, _("La corbeille est vide."))
    trash = selectors.system_folder(mailbox, Folder.Role.TRASH)
    return redirect(folder_url(trash) if trash else mailbox_home_url(mailbox))
