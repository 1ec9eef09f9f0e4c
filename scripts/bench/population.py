"""The people and boxes of the benchmarks, made through the application's services.

Called after ``Stack.migrate()`` (Django is set up in this process, as the role ``app``).
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

DOMAIN = "bench.mssante.test"
# 20 kB of text in 72-character lines: the size of the anchor's messages.
TEXT = "\n".join(
    ("Compte rendu de consultation : examen clinique sans particularité. " + "." * 8)[:72]
    for _ in range(20_480 // 73)
)


@dataclass
class Box:
    id: int
    address: str
    inbox: int  # the id of its inbox folder
    token: str = ""  # a bearer token of the API, for an applicative box


def domain() -> Any:
    from mailboxes.models import HostedDomain

    return HostedDomain.objects.get_or_create(name=DOMAIN)[0]


def _box(mailbox: Any, token: str = "") -> Box:
    from mailboxes.models import Folder

    inbox = Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX)
    return Box(mailbox.pk, mailbox.address, inbox.pk, token)


_numbers = iter(range(1, 10**6))


def professional(first: str = "Dominique", last: str = "Essai") -> tuple[Any, Box]:
    """A médecin with a nominative box (through accounts and mailboxes services)."""
    from accounts import services as accounts
    from mailboxes import services
    from mssante.lib.identifiers import make_rpps

    n = next(_numbers)
    user = accounts.create_professional(
        identifier=make_rpps(f"10{n:08d}"),
        first_name=first,
        last_name=f"{last}{n}",
        profession_code="10",
    )
    return user, _box(services.create_personal_mailbox(user, domain()))


def boxes(count: int) -> list[Box]:
    return [professional()[1] for _ in range(count)]


def software(name: str) -> Box:
    """An applicative box and a token of the API to send from it (``create_api_token``)."""
    from mailboxes import services
    from mailboxes.models import Mailbox

    mailbox = services.create_mailbox(Mailbox.Kind.APPLICATIVE, f"{name}@{DOMAIN}", domain())
    _token, raw = services.create_api_token(mailbox, by=None, label="banc d'essai")
    return _box(mailbox, raw)


def post(port: int, token: str, payload: dict[str, Any], path: str = "/api/v1/messages") -> tuple[int, Any]:  # fmt: skip
    """One API request; (status, decoded JSON or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, json.dumps(payload).encode(), _headers(token))
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, None


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def count_entries(cursor: Any, folders: list[int], after: int) -> int:
    cursor.execute(
        "SELECT count(*) FROM mailboxes_entry WHERE id > %s AND folder_id = ANY(%s)",
        (after, folders),
    )
    return int(cursor.fetchone()[0])


def last_entry(cursor: Any) -> int:
    cursor.execute("SELECT coalesce(max(id), 0) FROM mailboxes_entry")
    return int(cursor.fetchone()[0])


def wait_entries(cursor: Any, folders: list[int], after: int, target: int, stall: float = 120) -> bool:  # fmt: skip
    """Poll (one query every 50 ms) until ``target`` entries exist; False when it stalls."""
    seen, since = -1, time.monotonic()
    while True:
        now = count_entries(cursor, folders, after)
        if now >= target:
            return True
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            return False
        time.sleep(0.05)
