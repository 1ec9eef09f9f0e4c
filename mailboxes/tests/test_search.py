"""The webmail search: what it reads, in which order, and how its results name people."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from mailboxes import selectors
from mailboxes.models import Entry, Folder, Mailbox
from mailboxes.tests.test_views import entry_of, folder, listed_entry
from tests.personas import Person, login, send

pytestmark = pytest.mark.django_db


def test_search_results_name_the_correspondent_of_each_message(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    send(box, [nurse.address], subject="Pour Julien")
    send(nurse, [box.address], subject="Pour Claire")
    response = login(user).post(
        reverse("webmail_search", args=[box.pk]), {"q": "Pour"}, follow=True
    )
    html = response.content.decode()
    assert '<th scope="col">Correspondant</th>' in html and ">Expéditeur<" not in html
    cells = {row.entry.message.subject: row for row in response.context["rows"]}
    assert cells["Pour Julien"].outgoing and cells["Pour Julien"].who == nurse.address
    assert not cells["Pour Claire"].outgoing and cells["Pour Claire"].who == "Julien Dupont"
    assert f'<span class="webmail-who-label">À :</span> {nurse.address}' in html
    assert '<span class="webmail-who-label">De :</span> Julien Dupont' in html


def test_a_sent_message_filed_in_the_archive_names_its_recipients(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    entry = entry_of(box, send(box, [nurse.address], subject="Classé"))
    client = login(user)
    archive = folder(box, Folder.Role.ARCHIVE)
    client.post(reverse("webmail_move", args=[entry.pk]), {"folder": archive.pk})
    html = client.get(reverse("webmail_folder", args=[archive.pk])).content.decode()
    assert f'<span class="webmail-who-label">À :</span> {nurse.address}' in html


def test_the_search_never_reads_a_body(claire: Person, julien: Person) -> None:
    """Bodies exist only encrypted: nothing of them is in the search column."""
    (_user, box), nurse = claire, julien.box
    entry = entry_of(box, send(nurse, [box.address], subject="Bilan", text="Diagnostic secret"))
    entry.refresh_from_db()
    assert "Bilan" in entry.search_text and "secret" not in entry.search_text
    assert selectors.search(box, "Diagnostic") == []


def _newest_first(box: Mailbox, words: list[str]) -> list[Entry]:
    now = timezone.now()
    return [
        listed_entry(box, subject=word, when=now - timedelta(minutes=i))
        for i, word in enumerate(words)
    ]


@pytest.mark.parametrize(
    ("words", "query", "expected"),
    [
        # Found often enough among the newest entries: those are the results.
        (["commun"] * 8, "commun", [0, 1]),
        # Only in the oldest entry: found in the whole box.
        (["autre"] * 7 + ["rare"], "rare", [7]),
        # Once among the newest, once far behind: both, newest first.
        (["mot"] + ["autre"] * 6 + ["mot"], "mot", [0, 7]),
        # Nowhere.
        (["autre"] * 8, "absent", []),
    ],
)
def test_search_finds_common_and_rare_words_newest_first(
    claire: Person,
    monkeypatch: pytest.MonkeyPatch,
    words: list[str],
    query: str,
    expected: list[int],
) -> None:
    _user, box = claire
    monkeypatch.setattr(selectors, "SEARCH_PROBE", 3)
    made = _newest_first(box, words)
    found = selectors.search(box, query, limit=2)
    assert [e.pk for e in found] == [made[i].pk for i in expected]


def test_search_leaves_the_trash_out_in_both_steps(
    claire: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user, box = claire
    monkeypatch.setattr(selectors, "SEARCH_PROBE", 2)
    made = _newest_first(box, ["mot", "mot", "autre", "mot", "mot"])
    trash = folder(box, Folder.Role.TRASH)
    Entry.objects.filter(pk__in=[made[0].pk, made[4].pk]).update(folder=trash)
    assert [e.pk for e in selectors.search(box, "mot", limit=5)] == [made[1].pk, made[3].pk]
    assert [e.pk for e in selectors.search(box, "mot", limit=1)] == [made[1].pk]
