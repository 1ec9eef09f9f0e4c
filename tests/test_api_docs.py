"""The script of docs/api.md, run as written against the demo data on the real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from mailboxes.models import Entry, Message
from mssante import demo

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_documented_script_sends_and_reads_with_the_demo_token(live_server, capsys) -> None:
    demo.seed()
    text = (Path(settings.BASE_DIR) / "docs" / "api.md").read_text()
    script = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "http://127.0.0.1:8000/api/v1" in script
    script = script.replace("http://127.0.0.1:8000/api/v1", f"{live_server.url}/api/v1")
    exec(compile(script, "docs/api.md", "exec"), {})  # noqa: S102 - our own documentation
    (message,) = [
        m for m in Message.objects.filter(origin=Message.Origin.API) if m.subject == "Résultats"
    ]
    assert Entry.objects.filter(
        message=message, mailbox__address="claire.martin@hopital-demo.mssante.fr"
    ).exists()
    assert "delivered" in capsys.readouterr().out
