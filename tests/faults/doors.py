"""The three doors as their users drive them, and what each message became.

- the web: a professional logged in with password and TOTP, composing over HTTP
  (a draft, then "Envoyer"), who sends again when an error page shows;
- the REST API: a program with a token, retrying the same request with the same
  ``Idempotency-Key`` after a 5xx or a broken connection;
- the SMTP gateway: a peer operator (mutual TLS) whose queue sends the same bytes
  again after a 4xx or a broken connection, as every MTA does.

Each message carries a unique tag in its subject: the counts are made on it.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import requests

from tests.smtp_peers import Operator

RETRY_SECONDS = 0.5
BODY = "Bonjour,\nvoici le compte rendu de la consultation.\n" + "Ligne de compte rendu.\n" * 60


@dataclass
class Outcome:
    """One message a door was asked to send, and what the door answered."""

    tag: str
    door: str
    local: list[str]
    remote: list[str]
    acked: bool = False
    acked_at: float = 0.0
    attempts: int = 0
    temporary: list[str] = field(default_factory=list)
    final_error: str = ""
    not_before: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def recipients(self) -> list[str]:
        return self.local + self.remote


ACK, TEMPORARY, FINAL = "ack", "temporary", "final"


class Door:
    name = ""

    def attempt(self, outcome: Outcome) -> tuple[str, str]:
        """Try once; return (ACK | TEMPORARY | FINAL, what was answered)."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop any connection kept between messages."""


def run(
    door: Door, outcomes: list[Outcome], *, deadline: float, progress: Callable[[], None]
) -> None:
    """Send every message through ``door``, trying again later after a temporary failure."""
    queue = deque(outcomes)
    try:
        while queue and time.monotonic() < deadline:
            outcome = queue.popleft()
            wait = outcome.not_before - time.monotonic()
            if wait > 0:
                queue.append(outcome)
                if all(o.not_before > time.monotonic() for o in queue):
                    time.sleep(min(wait, RETRY_SECONDS))
                continue
            outcome.attempts += 1
            verdict, answer = door.attempt(outcome)
            if verdict == ACK:
                outcome.acked, outcome.acked_at = True, time.time()
                progress()
            elif verdict == TEMPORARY:
                outcome.temporary.append(answer)
                # Like a real client: 0.5 s, then doubling up to 4 s.
                wait = min(RETRY_SECONDS * 2 ** (len(outcome.temporary) - 1), 4.0)
                outcome.not_before = time.monotonic() + wait
                queue.append(outcome)
            else:
                outcome.final_error = answer
    finally:
        door.close()


def start(
    door: Door, outcomes: list[Outcome], deadline: float, progress: Callable[[], None]
) -> threading.Thread:
    thread = threading.Thread(
        target=run,
        args=(door, outcomes),
        kwargs={"deadline": deadline, "progress": progress},
        name=f"door-{door.name}",
        daemon=True,
    )
    thread.start()
    return thread


def _short(text: str) -> str:
    return " ".join(text.split())[:300]


# --------------------------------------------------------------------------- web


class WebDoor(Door):
    """A professional in a browser-like session (cookies, CSRF), against the real server."""

    name = "web"

    def __init__(self, base: str, mailbox_id: int) -> None:
        self.base = base
        self.mailbox_id = mailbox_id
        self.session = requests.Session()

    def _post(self, path: str, data: dict[str, str] | None = None) -> requests.Response:
        token = self.session.cookies.get("csrftoken") or ""
        return self.session.post(
            self.base + path,
            data={**(data or {}), "csrfmiddlewaretoken": token},
            headers={"X-CSRFToken": token, "Referer": self.base + "/"},
            allow_redirects=False,
            timeout=30,
        )

    def login(self, identifier: str, password: str, code: Callable[[], str]) -> None:
        self.session.get(self.base + "/connexion/", timeout=30).raise_for_status()
        step = self._post("/connexion/", {"identifier": identifier, "password": password})
        assert step.status_code == 302 and "/connexion/code/" in step.headers["Location"], step.text
        done = self._post("/connexion/code/", {"code": code()})
        assert done.status_code == 302, done.text[:2000]

    def attempt(self, outcome: Outcome) -> tuple[str, str]:
        try:
            if "compose_key" not in outcome.state:
                # "Écrire un message": a page with its key, no draft until something is sent.
                page = self.session.get(
                    f"{self.base}/messagerie/bal/{self.mailbox_id}/ecrire/", timeout=30
                )
                found = re.search(r'name="compose_key" value="([^"]+)"', page.text)
                if page.status_code != 200 or not found:
                    return TEMPORARY, f"compose {page.status_code}"
                outcome.state["compose_key"] = found.group(1)
            sent = self._post(
                f"/messagerie/bal/{self.mailbox_id}/ecrire/envoyer/",
                {
                    "compose_key": outcome.state["compose_key"],
                    "to": outcome.local[0],
                    "cc": ", ".join(outcome.local[1:] + outcome.remote),
                    "subject": outcome.tag,
                    "text": BODY,
                },
            )
        except requests.RequestException as exc:
            return TEMPORARY, f"connection: {type(exc).__name__}"
        if sent.status_code == 302 and "/brouillon/" not in sent.headers.get("Location", ""):
            # Sent now, or "déjà envoyé" for a retry whose earlier try was sent (the page's
            # key is recorded with its message): never a second message.
            return ACK, "302"
        answer = f"{sent.status_code} {_page_text(sent.text)}"
        if sent.status_code == 400 and 'id="compose-error"' in sent.text:
            return FINAL, answer  # the message was refused, with its reason
        # Any other error page: the user goes back and clicks "Envoyer" again.
        return TEMPORARY, answer


def _page_text(html: str) -> str:
    """The alert of a page (or its start), without markup."""
    found = re.search(r'role="alert"[^>]*>(.*?)</div>', html, re.S)
    text = re.sub(r"<[^>]+>", " ", found.group(1) if found else html[:600])
    return _short(text)


# --------------------------------------------------------------------------- API


class ApiDoor(Door):
    """Practice software with a token; the same Idempotency-Key on every retry."""

    name = "api"

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def attempt(self, outcome: Outcome) -> tuple[str, str]:
        try:
            answer = self.session.post(
                self.base + "/api/v1/messages",
                json={
                    "to": outcome.local[:1],
                    "cc": outcome.local[1:] + outcome.remote,
                    "subject": outcome.tag,
                    "text": BODY,
                },
                headers={"Idempotency-Key": re.sub(r"\s+", "-", outcome.tag)},
                timeout=30,
            )
        except requests.RequestException as exc:
            return TEMPORARY, f"connection: {type(exc).__name__}"
        text = f"{answer.status_code} {_short(answer.text)}"
        if answer.status_code == 201:
            return ACK, text
        if answer.status_code >= 500 or answer.status_code == 429:
            return TEMPORARY, text
        return FINAL, text


# --------------------------------------------------------------------------- SMTP


def peer_message(peer: Operator, tag: str, local: list[str]) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"dr.durand@{peer.domain}"
    msg["To"] = ", ".join(local)
    msg["Subject"] = tag
    msg["Message-ID"] = make_msgid(domain=peer.domain)
    msg.set_content(BODY)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


class SmtpDoor(Door):
    """A peer operator's MTA: one TLS connection reused, the same bytes sent again on 4xx."""

    name = "smtp"

    def __init__(self, port: int, peer: Operator) -> None:
        self.port = port
        self.peer = peer
        self.client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self.client is None:
            client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
            try:
                client.ehlo(f"mx.{self.peer.domain}")
                client.starttls(context=self.peer.client_context())
                client.ehlo(f"mx.{self.peer.domain}")
            except BaseException:
                client.close()
                raise
            self.client = client
        return self.client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None

    def attempt(self, outcome: Outcome) -> tuple[str, str]:
        raw = outcome.state.setdefault("raw", peer_message(self.peer, outcome.tag, outcome.local))
        try:
            refused = self._connect().sendmail(f"dr.durand@{self.peer.domain}", outcome.local, raw)
        except smtplib.SMTPResponseException as exc:
            self._drop()
            text = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
            return (TEMPORARY if 400 <= exc.smtp_code < 500 else FINAL), text
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            codes = {code for code, _text in exc.recipients.values()}
            verdict = TEMPORARY if all(400 <= c < 500 for c in codes) else FINAL
            return verdict, _short(str(exc.recipients))
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            self._drop()
            return TEMPORARY, f"connection: {type(exc).__name__}"
        if refused:
            return FINAL, f"partly refused: {refused}"
        return ACK, "250"

    def _drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def start_half_data(port: int, peer: Operator, tag: str, local: list[str]) -> smtplib.SMTP:
    """A peer in the middle of DATA: the first half of the message sent, the rest held back."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.ehlo(f"mx.{peer.domain}")
    client.starttls(context=peer.client_context())
    client.ehlo(f"mx.{peer.domain}")
    client.mail(f"dr.durand@{peer.domain}")
    for address in local:
        client.rcpt(address)
    code, _text = client.docmd("DATA")
    assert code == 354, code
    raw = peer_message(peer, tag, local)
    assert client.sock is not None
    client.sock.sendall(raw[: len(raw) // 2])
    return client
