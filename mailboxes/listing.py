"""Reads of the message list beyond one page by date: sorting, new mail, results by patient.

Every function takes a folder or a mailbox the view has already resolved inside the
user's boxes (``selectors.get_folder`` / ``get_mailbox``): nothing here widens access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Max, Q, QuerySet, TextField, Value
from django.db.models.expressions import Combinable, OrderBy
from django.db.models.functions import Cast, Coalesce, Lower, NullIf

from accounts.models import PatientIdentity
from mailboxes.models import Entry, Folder, Mailbox
from mailboxes.selectors import PAGE_SIZE, _cursor, _entries, newer_than, parse_cursor

# ?tri=<column>&ordre=<asc|desc>: the column's order when none is given first. Not by
# subject: subjects are sealed at rest (docs/decisions.md), the database cannot order them
# and opening a whole folder to sort it would cost what the box holds.
SORTS: dict[str, str] = {"date": "desc", "correspondant": "asc", "taille": "desc"}
DEFAULT_SORT = "date"
# Past this page a sort other than by date stops (OFFSET pages cost what they skip): the
# newest-first order, keyset-paginated, reaches every message.
MAX_SORTED_PAGE = 200


@dataclass(frozen=True, slots=True)
class Sort:
    """A validated sort of the list: an unknown column or order is the default one."""

    column: str = DEFAULT_SORT
    order: str = "desc"

    @classmethod
    def of(cls, column: str | None, order: str | None) -> Sort:
        column = column if column in SORTS else DEFAULT_SORT
        order = order if order in ("asc", "desc") else SORTS[column]
        return cls(column, order)

    @property
    def is_default(self) -> bool:
        return self.column == DEFAULT_SORT and self.order == SORTS[DEFAULT_SORT]


def parse_page(value: str | None) -> int:
    """A page number from 1 to MAX_SORTED_PAGE (anything else: 1)."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 4:
        return 1
    return min(max(int(value), 1), MAX_SORTED_PAGE)


def _order_by(sort: Sort, *, sent: bool) -> list[OrderBy | str]:
    desc = sort.order == "desc"
    key: Combinable
    if sort.column == "correspondant":
        # What the list shows: the recipients of what the box sent, else the sender's name.
        key = (
            Lower(Cast("message__to_addrs", TextField()))
            if sent
            else Lower(Coalesce(NullIf("message__from_name", Value("")), "message__from_addr"))
        )
    elif sort.column == "taille":
        key = F("message__size")
    else:
        key = F("received_at")
    return [key.desc() if desc else key.asc(), "-pk" if desc else "pk"]


def sorted_page(
    folder: Folder, sort: Sort, page: int, limit: int = PAGE_SIZE
) -> tuple[list[Entry], bool]:
    """One page of the folder in ``sort`` order (OFFSET pages, at most MAX_SORTED_PAGE)."""
    qs = _entries().select_related(None).select_related("message").filter(folder=folder)
    sent = folder.role == Folder.Role.SENT
    start = (page - 1) * limit
    rows = list(qs.order_by(*_order_by(sort, sent=sent))[start : start + limit + 1])
    more = len(rows) > limit and page < MAX_SORTED_PAGE
    rows = rows[:limit]
    for row in rows:
        row.folder = folder
    return rows, more


# Past this many new messages the count says "100 or more": counting is then pointless.
NEW_COUNT_CAP = 100


def cursor_of(entry: Entry) -> str:
    """The cursor of an entry (what ``new_count`` counts from: the newest row shown)."""
    return _cursor(entry)


def new_count(folder: Folder, since: str | None) -> int:
    """How many entries arrived in the folder after the cursor ``since`` (the newest shown).

    A walk of the (folder, received_at, id) index from the cursor, stopped at
    NEW_COUNT_CAP: as cheap with a million messages as with ten. A malformed cursor: 0.
    """
    cursor = parse_cursor(since)
    if cursor is None:
        return 0
    newer = Entry.objects.filter(folder=folder).filter(newer_than(cursor))
    return len(newer.order_by().values_list("pk", flat=True)[:NEW_COUNT_CAP])


# --------------------------------------------------------------------------- results by patient


def is_ins(value: str) -> bool:
    return len(value) == 15 and value.isascii() and value.isalnum()


def format_ins(ins: str) -> str:
    """An INS matricule as people read it: ``1 84 12 75 123 456 78``."""
    if not is_ins(ins):
        return ins
    return " ".join((ins[0], ins[1:3], ins[3:5], ins[5:7], ins[7:10], ins[10:13], ins[13:15]))


def patient_names(ins_values: set[str]) -> dict[str, str]:
    """The name of each known patient among these INS (one query), "NOM Prénoms"."""
    wanted = {i for i in ins_values if is_ins(i)}
    if not wanted:
        return {}
    return {
        identity.ins: f"{identity.birth_name.upper()} {identity.first_names}".strip()
        for identity in PatientIdentity.objects.filter(ins__in=wanted).only(
            "ins", "birth_name", "first_names"
        )
    }


def patient_label(ins: str, names: dict[str, str]) -> str:
    return names.get(ins) or format_ins(ins)


def _results(mailbox: Mailbox) -> QuerySet[Entry]:
    """The box's received messages that name a patient (lab results, reports), trash aside."""
    return (
        Entry.objects.filter(mailbox=mailbox)
        .exclude(message__patient_ins="")
        .exclude(folder__role=Folder.Role.TRASH)
        # What the box itself sent to or about a patient is not a result it received.
        .exclude(message__sender_mailbox=mailbox)
    )


@dataclass(frozen=True, slots=True)
class PatientResults:
    ins: str
    label: str
    known: bool
    total: int
    unread: int
    last: datetime

    @property
    def ins_formatted(self) -> str:
        return format_ins(self.ins)


# The page lists the patients with the most recent results first; a box with more is
# searched by patient from the list's chips.
MAX_PATIENTS = 200


def patients(mailbox: Mailbox) -> list[PatientResults]:
    """The patients named by the box's results, newest first, with their (unread) counts."""
    rows = list(
        _results(mailbox)
        .values("message__patient_ins")
        .annotate(
            total=Count("pk"), unread=Count("pk", filter=Q(seen=False)), last=Max("received_at")
        )
        .order_by("-last")[:MAX_PATIENTS]
    )
    names = patient_names({r["message__patient_ins"] for r in rows})
    return [
        PatientResults(
            ins=r["message__patient_ins"],
            label=patient_label(r["message__patient_ins"], names),
            known=r["message__patient_ins"] in names,
            total=r["total"],
            unread=r["unread"],
            last=r["last"],
        )
        for r in rows
    ]


# A patient's results on one page: with the bulk actions, a year of one patient's results.
MAX_PATIENT_RESULTS = 500


def patient_results(mailbox: Mailbox, ins: str) -> list[Entry]:
    """Every result of the box for this patient, newest first (at most MAX_PATIENT_RESULTS)."""
    if not is_ins(ins):
        return []
    return list(
        _entries()
        .filter(pk__in=_results(mailbox).filter(message__patient_ins=ins).values("pk"))
        .order_by("-received_at", "-pk")[:MAX_PATIENT_RESULTS]
    )
