"""Reads behind the webmail: confinement to the user's mailboxes, counts, pages, search, threads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from mailboxes import search, selectors, services
from mailboxes.models import Entry, Folder
from mailboxes.tests.test_views import folder, listed_entry
from tests.personas import send

pytestmark = pytest.mark.django_db


def test_accessible_mailboxes_are_those_the_user_owns(claire, julien) -> None:
    (user, box), (_, _nurse) = claire, julien
    assert list(selectors.accessible_mailboxes(user)) == [box]


def test_get_entry_of_another_users_mailbox_is_404(claire, julien) -> None:
    (user, _box), (nurse_user, nurse) = claire, julien
    entry = listed_entry(nurse)
    with pytest.raises(Http404):
        selectors.get_entry(user, entry.pk)
    assert selectors.get_entry(nurse_user, entry.pk) == entry


def test_folder_counts_come_in_one_query(claire, django_assert_num_queries) -> None:
    _user, box = claire
    listed_entry(box)
    listed_entry(box, seen=True)
    listed_entry(box, folder=folder(box, Folder.Role.ARCHIVE))
    with django_assert_num_queries(1):
        views = selectors.folders_with_counts(box)
    counts = {v.folder.role: (v.unread, v.total) for v in views}
    assert counts[Folder.Role.INBOX] == (1, 2)
    assert counts[Folder.Role.ARCHIVE] == (1, 1)
    assert [v.folder.role for v in views][:2] == [Folder.Role.INBOX, Folder.Role.DRAFTS]


def test_custom_folders_follow_system_folders_by_name(claire) -> None:
    user, box = claire
    services.create_folder(box, "Zèbre", by=user)
    services.create_folder(box, "alpha", by=user)
    labels = [v.label for v in selectors.folders_with_counts(box)]
    assert labels[-2:] == ["alpha", "Zèbre"]


def test_folder_page_is_newest_first_and_keyset_paginated_over_ties(claire) -> None:
    _user, box = claire
    inbox = folder(box, Folder.Role.INBOX)
    now = timezone.now()
    made = [listed_entry(box, when=now - timedelta(minutes=i // 4)).pk for i in range(23)]
    seen: list[int] = []
    cursor = None
    while True:
        page = selectors.folder_page(inbox, before=cursor, limit=5)
        seen += [e.pk for e in page.entries]
        stamps = [(e.received_at, e.pk) for e in page.entries]
        assert stamps == sorted(stamps, reverse=True)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_a_page_that_fills_exactly_has_no_next_cursor(claire) -> None:
    _user, box = claire
    for _ in range(5):
        listed_entry(box)
    assert selectors.folder_page(folder(box, Folder.Role.INBOX), limit=5).next_cursor is None


@pytest.mark.parametrize("value", ["", "abc", "12", "-3", "1-", "1-x", "9" * 30 + "-1", "1.5-2"])
def test_a_malformed_cursor_is_ignored(value) -> None:
    assert selectors.parse_cursor(value) is None


def test_a_cursor_round_trips_to_the_microsecond(claire) -> None:
    _user, box = claire
    entry = listed_entry(box, when=timezone.now().replace(microsecond=123457))
    when, pk = selectors.parse_cursor(selectors._cursor(entry))  # type: ignore[misc]
    assert (when, pk) == (entry.received_at, entry.pk)


def test_search_skips_the_trash_and_matches_words(claire) -> None:
    _user, box = claire
    made = [
        listed_entry(box, subject="100% remboursé"),
        listed_entry(box, subject="1000 remboursés"),
        listed_entry(box, subject="100% à la corbeille", folder=folder(box, Folder.Role.TRASH)),
    ]
    search.reindex(list(Entry.objects.filter(pk__in=[e.pk for e in made])))
    # Punctuation separates words; the last word is a prefix ("100" of "1000").
    found = {e.message.subject.rsplit(" ", 1)[0] for e in selectors.search(box, "100%").entries}
    assert found == {"100% remboursé", "1000 remboursés"}
    found = {
        e.message.subject.rsplit(" ", 1)[0] for e in selectors.search(box, "100 remboursé").entries
    }
    assert found == {"100% remboursé"}


def test_thread_lists_the_conversation_oldest_first(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    first = send(box, [nurse.address], subject="Q")
    answer = send(nurse, [box.address], subject="Re : Q", in_reply_to=first)
    entry = selectors.get_entry(user, box.entries.get(message=answer).pk)
    assert [e.message_id for e in selectors.thread(entry)] == [first.pk, answer.pk]
