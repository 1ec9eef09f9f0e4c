"""Who may do what: every webmail URL and API endpoint touching mailboxes and messages.

Personas: the holder (of a nominative box, and responsible of an organisational one),
two delegates of the nominative box (read, send), three members of the organisational
box (read, send, manage), an outsider, a patient and staff. Each URL is tried by
every persona, each try rolled back so that one persona's write never changes what
the next one sees. Expected: enough rights → it works; a member short of the role →
403; anyone else → 404 (no oracle telling that the id exists).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import TOTPDevice, User
from mailboxes import services
from mailboxes.models import Draft, Entry, Folder, Mailbox, Membership
from mailboxes.selectors import Access
from mssante.lib import mime
from tests import factories

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PERSONAS = [
    "holder",
    "delegate_read",
    "delegate_send",
    "member_read",
    "member_send",
    "member_manage",
    "outsider",
    "patient",
    "staff",
]
AUTHOR = 99  # drafts are their author's alone, whatever the role


@dataclass
class World:
    users: dict[str, User]
    boxes: dict[str, Mailbox]
    entries: dict[str, Entry]
    grants: dict[str, Membership]
    custom: dict[str, Folder]
    drafts: dict[str, Draft]
    files: dict[str, int]
    tokens: dict[str, str]


def _level(world: World, persona: str, box: str) -> int | None:
    if persona in ("patient", "staff"):
        return None
    if persona == "holder":
        return Access.HOLDER
    table = {
        "per": {"delegate_read": Access.READ, "delegate_send": Access.SEND},
        "org": {
            "member_read": Access.READ,
            "member_send": Access.SEND,
            "member_manage": Access.MANAGE,
        },
    }
    return table[box].get(persona)


@pytest.fixture
def world(django_capture_on_commit_callbacks: Any) -> World:
    p = factories.professional
    users = {
        "holder": p(first_name="Claire", last_name="Martin"),
        "delegate_read": p(first_name="Anne", last_name="Lecture"),
        "delegate_send": p(first_name="Bruno", last_name="Envoi"),
        "member_read": p(first_name="Chloé", last_name="Lecture"),
        "member_send": p(first_name="David", last_name="Envoi"),
        "member_manage": p(first_name="Emma", last_name="Gestion"),
        "outsider": p(first_name="Paul", last_name="Durand"),
        "patient": factories.patient(),
        "staff": factories.staff(),
    }
    per = factories.mailbox(users["holder"])
    org = factories.shared_mailbox(users["holder"], local="cardiologie")
    boxes = {"per": per, "org": org}
    holder = users["holder"]
    grants = {
        "per": services.grant_membership(per, users["delegate_read"], "read", by=holder),
        "org": services.grant_membership(org, users["member_read"], "read", by=holder),
    }
    services.grant_membership(per, users["delegate_send"], "send", by=holder)
    services.grant_membership(org, users["member_send"], "send", by=holder)
    services.grant_membership(org, users["member_manage"], "manage", by=holder)
    stranger = factories.mailbox(users["outsider"])
    entries, custom, drafts, files = {}, {}, {}, {}
    for key, box in boxes.items():
        with django_capture_on_commit_callbacks(execute=True):
            message = services.submit_message(
                mailbox=stranger,
                author=users["outsider"],
                to=[box.address],
                cc=[],
                subject="Compte rendu",
                text="Bonjour.",
                attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
            )
        entries[key] = Entry.objects.select_related("message").get(mailbox=box, message=message)
        custom[key] = services.create_folder(box, "Cardiologie", by=holder)
        drafts[key] = services.save_draft(
            mailbox=box,
            author=holder,
            draft=None,
            to=[stranger.address],
            cc=[],
            subject="Brouillon",
            text=".",
        )
        files[key] = services.add_draft_attachment(drafts[key], "a.pdf", "application/pdf", PDF).pk
    tokens = {key: factories.api_token(box)[1] for key, box in boxes.items()}
    return World(users, boxes, entries, grants, custom, drafts, files, tokens)


_CLIENT: list[Client] = []


def login(user: User) -> Client:
    # One client (one handler, middleware loaded once) whose session changes hands.
    if not _CLIENT:
        _CLIENT.append(Client())
    client = _CLIENT[0]
    client.logout()
    client.force_login(user, backend="accounts.backends.IdentifierBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client


@dataclass(frozen=True)
class Url:
    name: str
    method: str
    need: int
    args: Callable[[World, str], list[Any]]
    data: Callable[[World, str], dict[str, Any]] = lambda w, b: {}


def _entry(w: World, b: str) -> list[Any]:
    return [w.entries[b].pk]


def _part(w: World, b: str) -> list[Any]:
    return [w.entries[b].pk, w.entries[b].message.attachments[0]["index"]]


def _box(w: World, b: str) -> list[Any]:
    return [w.boxes[b].pk]


def _draft(w: World, b: str) -> list[Any]:
    return [w.drafts[b].pk]


WEB = [
    Url("webmail_mailbox", "get", Access.READ, _box),
    Url("webmail_folder", "get", Access.READ, lambda w, b: [w.entries[b].folder_id]),
    Url("webmail_search", "get", Access.READ, _box, lambda w, b: {"q": "Compte"}),
    Url("webmail_read", "get", Access.READ, _entry),
    Url("webmail_conversation", "get", Access.READ, _entry),
    Url("webmail_flag", "post", Access.READ, _entry, lambda w, b: {"flagged": "1"}),
    Url("webmail_mark_unread", "post", Access.READ, _entry),
    Url(
        "webmail_move",
        "post",
        Access.READ,
        _entry,
        lambda w, b: {
            "folder": Folder.objects.get(mailbox=w.boxes[b], role=Folder.Role.ARCHIVE).pk
        },
    ),
    Url("webmail_trash", "post", Access.READ, _entry),
    Url("webmail_restore", "post", Access.READ, _entry),
    Url("webmail_download", "get", Access.READ, _part),
    Url("webmail_preview", "get", Access.READ, _part),
    Url("webmail_compose", "post", Access.SEND, _box),
    Url("webmail_reply", "post", Access.SEND, _entry, lambda w, b: {"mode": "reply"}),
    Url("webmail_empty_trash", "post", Access.MANAGE, _box),
    Url("webmail_folder_create", "post", Access.MANAGE, _box, lambda w, b: {"name": "Neuf"}),
    Url(
        "webmail_folder_rename",
        "post",
        Access.MANAGE,
        lambda w, b: [w.custom[b].pk],
        lambda w, b: {"name": "Renommé"},
    ),
    Url("webmail_folder_delete", "post", Access.MANAGE, lambda w, b: [w.custom[b].pk]),
    Url("webmail_members", "get", Access.MANAGE, _box),
    Url(
        "webmail_members",
        "post",
        Access.MANAGE,
        _box,
        lambda w, b: {
            "identifier": w.users["outsider"].professional.id_number,
            "role": "read",
        },
    ),
    Url(
        "webmail_member_change",
        "post",
        Access.MANAGE,
        lambda w, b: [w.boxes[b].pk, w.grants[b].pk],
        lambda w, b: {"role": "send"},
    ),
    Url(
        "webmail_member_revoke",
        "post",
        Access.MANAGE,
        lambda w, b: [w.boxes[b].pk, w.grants[b].pk],
    ),
    Url("webmail_journal", "get", Access.HOLDER, _box),
    Url("webmail_draft", "get", AUTHOR, _draft),
    Url("webmail_draft_save", "post", AUTHOR, _draft, lambda w, b: {"subject": "x"}),
    Url(
        "webmail_draft_send",
        "post",
        AUTHOR,
        _draft,
        lambda w, b: {"to": w.boxes["per" if b == "org" else "org"].address, "text": "."},
    ),
    Url("webmail_draft_delete", "post", AUTHOR, _draft),
    Url("webmail_draft_upload", "post", AUTHOR, _draft),
    Url(
        "webmail_draft_attachment",
        "get",
        AUTHOR,
        lambda w, b: [w.drafts[b].pk, w.files[b]],
    ),
    Url(
        "webmail_draft_attachment_delete",
        "post",
        AUTHOR,
        lambda w, b: [w.drafts[b].pk, w.files[b]],
    ),
]


def expected(world: World, persona: str, box: str, need: int) -> str:
    level = _level(world, persona, box)
    if need == AUTHOR:
        return "ok" if persona == "holder" else "404"
    if level is None:
        return "404"
    return "ok" if level >= need else "403"


def outcome(status: int) -> str:
    return "ok" if status in (200, 204, 302) else str(status)


def attempt(client: Client, method: str, url: str, data: dict[str, Any]) -> int:
    # Rolled back: a persona's write (trash, revoke…) must not change the next one's try.
    with transaction.atomic():
        response = getattr(client, method)(url, data)
        transaction.set_rollback(True)
    return response.status_code


@pytest.mark.parametrize("box", ["per", "org"])
@pytest.mark.parametrize("url", WEB, ids=[f"{u.method}-{u.name}" for u in WEB])
def test_web_matrix(world: World, url: Url, box: str) -> None:
    path = reverse(url.name, args=url.args(world, box))
    got, want = {}, {}
    for persona in PERSONAS:
        client = login(world.users[persona])
        got[persona] = outcome(attempt(client, url.method, path, url.data(world, box)))
        want[persona] = expected(world, persona, box, url.need)
    assert got == want


API = [
    ("get", lambda w, b: f"/api/v1/mailboxes/{w.boxes[b].address}/messages", None),
    ("get", lambda w, b: f"/api/v1/messages/{w.entries[b].message.public_id}", None),
    ("get", lambda w, b: f"/api/v1/messages/{w.entries[b].message.public_id}/raw", None),
    (
        "post",
        lambda w, b: f"/api/v1/messages/{w.entries[b].message.public_id}/flags",
        {"seen": True},
    ),
    ("post", lambda w, b: "/api/v1/messages", "send"),
]


@pytest.mark.parametrize("box", ["per", "org"])
@pytest.mark.parametrize(
    "index", range(len(API)), ids=[f"{m}-{i}" for i, (m, _p, _d) in enumerate(API)]
)
def test_api_matrix(
    world: World, index: int, box: str, django_capture_on_commit_callbacks: Any
) -> None:
    method, path_of, data = API[index]
    path = path_of(world, box)
    other = "org" if box == "per" else "per"
    body = {"to": [world.boxes[other].address], "text": "x"} if data == "send" else data

    def call(client: Client, token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with transaction.atomic():
            if method == "get":
                response = client.get(path, headers=headers)
            else:
                response = client.post(path, body, content_type="application/json", headers=headers)
            transaction.set_rollback(True)
        return response.status_code

    # A web session, whoever it belongs to, opens nothing in the API: tokens only.
    for persona in PERSONAS:
        assert call(login(world.users[persona]), None) == 401, persona
    anonymous = login(world.users["outsider"])
    anonymous.logout()
    assert call(anonymous, world.tokens[box]) in (200, 201)
    foreign = call(anonymous, world.tokens[other])
    if path.startswith("/api/v1/mailboxes/"):
        assert foreign == 403
    elif path == "/api/v1/messages":
        assert foreign == 201  # it sends from the token's own box, never from another
    else:
        assert foreign == 404
