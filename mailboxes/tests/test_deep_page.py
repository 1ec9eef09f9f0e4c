"""The deep pages of a folder: what the cursor selects, what it costs (issue 13).

A page far down a big box is read as one range of the (folder, received_at, id) index,
starting at the cursor: the cursor is a row comparison ``(received_at, id) < (when, pk)``.
Its rows must be exactly those of the definition it replaced (``received_at < when OR
(received_at = when AND id < pk)``), in the same order, whatever the ties on the date and
however the ids run against the dates; the search's next pages and the new-mail probe use
the same comparison.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailboxes import search, selectors
from mailboxes.models import Entry, Folder, Mailbox
from mailboxes.tests.test_views import folder, listed_entry
from tests.personas import login

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr class="webmail-row[^"]*" data-entry="(\d+)"')


def _seed(box: Mailbox, count: int, *, seed: int = 13) -> list[Entry]:
    """``count`` entries of the inbox, created in a shuffled order of their dates (ids do
    not follow dates), four to a second (ties the id breaks), with entries of the archive
    interleaved (never listed with the inbox)."""
    rng = random.Random(seed)
    base = timezone.now().replace(microsecond=250_000)
    slots = list(range(count))
    rng.shuffle(slots)
    made = []
    archive = folder(box, Folder.Role.ARCHIVE)
    for n, slot in enumerate(slots):
        made.append(listed_entry(box, when=base - timedelta(seconds=slot // 4)))
        if n % 7 == 0:
            listed_entry(box, when=base - timedelta(seconds=slot // 4), folder=archive)
    return made


def _reference(inbox: Folder, when: datetime, pk: int, limit: int) -> list[int]:
    """The page after (when, pk) as the OR of the two cases defined it before."""
    older = Entry.objects.filter(folder=inbox).filter(
        Q(received_at__lt=when) | Q(received_at=when, pk__lt=pk)
    )
    return list(older.order_by("-received_at", "-pk").values_list("pk", flat=True)[:limit])


def test_every_deep_page_shows_the_rows_of_the_former_definition_in_its_order(claire) -> None:
    user, box = claire
    made = _seed(box, 130)
    inbox = folder(box, Folder.Role.INBOX)
    client = login(user)
    url = reverse("webmail_folder", args=[inbox.pk])
    # Every position of the folder as a cursor: ties at the start, the middle, the end.
    for entry in sorted(made, key=lambda e: (e.received_at, e.pk), reverse=True):
        cursor = selectors._cursor(entry)
        response = client.get(url, {"avant": cursor})
        assert response.status_code == 200
        shown = [int(pk) for pk in ROW.findall(response.content.decode())]
        expected = _reference(inbox, entry.received_at, entry.pk, selectors.PAGE_SIZE)
        assert shown == expected, cursor
        more = _reference(inbox, entry.received_at, entry.pk, selectors.PAGE_SIZE + 1)
        assert (response.context["next_cursor"] is not None) == (len(more) > selectors.PAGE_SIZE)


def test_a_cursor_between_two_ties_keeps_the_older_of_the_second(claire) -> None:
    _user, box = claire
    when = timezone.now().replace(microsecond=0)
    first, second, third = (listed_entry(box, when=when) for _ in range(3))
    older = listed_entry(box, when=when - timedelta(microseconds=1))
    newer = listed_entry(box, when=when + timedelta(microseconds=1))
    inbox = folder(box, Folder.Role.INBOX)
    page = selectors.folder_page(inbox, before=selectors._cursor(second))
    assert [e.pk for e in page.entries] == [first.pk, older.pk]
    assert newer.pk not in [e.pk for e in selectors.folder_page(inbox, before=selectors._cursor(third)).entries]  # fmt: skip


def test_a_deep_page_runs_as_many_queries_as_the_first_whatever_its_depth(claire) -> None:
    user, box = claire
    made = _seed(box, 160)
    ordered = sorted(made, key=lambda e: (e.received_at, e.pk), reverse=True)
    client = login(user)
    url = reverse("webmail_folder", args=[folder(box, Folder.Role.INBOX).pk])
    client.get(url)  # the session and the catalogues warmed

    def count(**query: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, query).status_code == 200
        return len(captured.captured_queries)

    first = count()
    assert count(avant=selectors._cursor(ordered[10])) == first
    assert count(avant=selectors._cursor(ordered[100])) == first  # 50 rows, not 10 more
    assert count(avant=selectors._cursor(ordered[155])) == first  # the last 4 rows


def test_a_hostile_cursor_never_reaches_the_sql_and_shows_the_first_page(claire) -> None:
    user, box = claire
    _seed(box, 60)
    client = login(user)
    url = reverse("webmail_folder", args=[folder(box, Folder.Role.INBOX).pk])
    first = ROW.findall(client.get(url).content.decode())
    hostile_cursors = ["1-1) OR (1=1", "9" * 21 + "-1", "1-" + "9" * 20, "-1--1", "1e9-1",
                       "1-²", "²-1", "٣-٣", " 1-1", "1-1 "]  # fmt: skip
    for hostile in hostile_cursors:
        response = client.get(url, {"avant": hostile})
        assert response.status_code == 200
        assert ROW.findall(response.content.decode()) == first
    # A cursor of the far future or the epoch: every row, or none.
    assert ROW.findall(client.get(url, {"avant": "99999999999999999-1"}).content.decode()) == first
    assert ROW.findall(client.get(url, {"avant": "0-0"}).content.decode()) == []


@pytest.mark.parametrize("path", ["webmail_folder", "webmail_new_mail"])
def test_a_cursor_of_digits_int_refuses_is_ignored_not_an_error(claire, path) -> None:
    """ "²" is a digit to str.isdigit() and not to int(): it was a 500."""
    user, box = claire
    url = reverse(path, args=[folder(box, Folder.Role.INBOX).pk])
    for value in ["1-²", "²-1", "1-٣"]:
        response = login(user).get(url, {"avant": value, "depuis": value})
        assert response.status_code == 200, value


def test_another_users_cursor_shows_only_the_own_folder(claire, julien) -> None:
    (user, box), (_nurse_user, nurse) = claire, julien
    theirs = _seed(nurse, 20, seed=1)
    mine = _seed(box, 20, seed=2)
    client = login(user)
    url = reverse("webmail_folder", args=[folder(box, Folder.Role.INBOX).pk])
    newest_of_theirs = max(theirs, key=lambda e: (e.received_at, e.pk))
    shown = {int(pk) for pk in ROW.findall(client.get(url, {"avant": selectors._cursor(newest_of_theirs)}).content.decode())}  # fmt: skip
    assert shown and shown <= {e.pk for e in mine}
    # Their folder stays theirs, cursor or not.
    other = reverse("webmail_folder", args=[folder(nurse, Folder.Role.INBOX).pk])
    assert client.get(other, {"avant": selectors._cursor(newest_of_theirs)}).status_code == 404


def test_the_new_mail_probe_counts_what_came_after_the_newest_shown_over_ties(claire) -> None:
    user, box = claire
    when = timezone.now().replace(microsecond=0)
    shown = [listed_entry(box, when=when) for _ in range(3)]
    client = login(user)
    url = reverse("webmail_new_mail", args=[folder(box, Folder.Role.INBOX).pk])
    # The newest shown is the tie with the highest id: nothing after it yet.
    assert client.get(url, {"depuis": selectors._cursor(shown[-1])}).json()["count"] == 0
    assert client.get(url, {"depuis": selectors._cursor(shown[0])}).json()["count"] == 2
    listed_entry(box, when=when)  # same second, a higher id: new
    listed_entry(box, when=when + timedelta(seconds=1))
    listed_entry(box, when=when - timedelta(seconds=1))  # older: not new
    assert client.get(url, {"depuis": selectors._cursor(shown[-1])}).json()["count"] == 2


def test_the_search_walks_its_pages_over_ties_exactly_once(claire) -> None:
    _user, box = claire
    made = _seed(box, 125)
    search.reindex(list(Entry.objects.filter(pk__in=[e.pk for e in made])))
    expected = [e.pk for e in sorted(made, key=lambda e: (e.received_at, e.pk), reverse=True)]
    seen: list[int] = []
    cursor = None
    while True:
        page = selectors.search(box, "Liste", before=cursor)
        seen += [e.pk for e in page.entries]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected


@pytest.mark.services
def test_postgresql_starts_a_deep_page_at_its_cursor_in_the_index(claire) -> None:
    """The plan, not a timing: the cursor is in the index condition, no row is filtered.

    With the OR of the two cases, PostgreSQL either walked the index from the newest entry,
    filtering every newer row out, or gathered all older rows in a bitmap and sorted them:
    at 100,000 messages, a page half-way down read 50,000 rows.
    """
    if connection.vendor != "postgresql":
        pytest.skip("the plan of PostgreSQL")
    _user, box = claire
    made = _seed(box, 80)
    inbox = folder(box, Folder.Role.INBOX)
    middle = sorted(made, key=lambda e: (e.received_at, e.pk))[40]
    with CaptureQueriesContext(connection) as captured:
        selectors.folder_page(inbox, before=selectors._cursor(middle))
    sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        # A tiny table: make the planner take an index, as it does at 100,000 rows.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using entry_folder_page" in plan, plan
    assert re.search(r"Index Cond: .*ROW\(received_at, id\) < ROW\(", plan), plan
    # No row of the page's index scan is filtered out, and nothing is sorted. (A "Join
    # Filter" of the join to the message table, which the planner may pick on a tiny
    # table, filters no entry.)
    assert not re.search(r"^\s*Filter:", plan, re.M) and "Sort" not in plan, plan
