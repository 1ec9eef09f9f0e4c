"""Every action the code journals has a French label, and the admin shows labels and details.

The codes are read from the source (``ast``), as written for ``record(``,
``record_many(`` and the helpers that pass a code on (``event=``, ``action=``): a new
code without a label in ``audit/labels.py`` fails here, and so does a new way of making
codes (an f-string, a variable) this test does not know yet.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.test import Client

from audit import journal, labels
from audit.models import AuditEvent
from mailboxes.models import Delivery

ROOT = Path(__file__).resolve().parents[2]
# Every app with code (new apps join here: the scan must see them).
APPS = (
    "accounts",
    "audit",
    "charter",
    "clients",
    "directory",
    "mailboxes",
    "mssante",
    "patients",
    "trust",
)
CODE = re.compile(r"^[a-z_]+(\.[a-z_]+)?$")
DOTTED = re.compile(r"^[a-z_]+\.[a-z_]+$")  # a code handed on by keyword has a dot
# Codes made by an f-string, and every code each can make.
FAMILIES = {
    "message.{status}": [f"message.{status}" for status in Delivery.Status.values],
    "message.report_{kind}": ["message.report_dsn", "message.report_mdn"],
}
# Variables handed a code by their caller (found through the keyword of the same name).
RELAYED = {"event", "action"}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _code_of(node: ast.expr, module: ast.Module, where: str) -> list[str]:
    """The codes an expression passed as an action can be."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        assert CODE.match(node.value), f"{where}: {node.value!r} is not an action code"
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        pattern = ast.unparse(node)[2:-1]  # f'...' -> ...
        assert pattern in FAMILIES, f"{where}: add the codes of f'{pattern}' to FAMILIES"
        return FAMILIES[pattern]
    if isinstance(node, ast.IfExp):
        return _code_of(node.body, module, where) + _code_of(node.orelse, module, where)
    if isinstance(node, ast.Name) and node.id in RELAYED:
        return []  # its callers' keyword is collected where they call
    if (
        isinstance(node, ast.Call)
        and _name(node.func) == "get"
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    ):
        # A table of codes (audit.admin_journal._ACTIONS.get(flag, default)).
        table = node.func.value.id
        codes = [str(a.value) for a in node.args[1:] if isinstance(a, ast.Constant)]
        for statement in module.body:
            if (
                isinstance(statement, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == table for t in statement.targets)
                and isinstance(statement.value, ast.Dict)
            ):
                codes += [
                    str(v.value) for v in statement.value.values if isinstance(v, ast.Constant)
                ]
        assert codes, f"{where}: cannot tell the codes of {ast.unparse(node)}"
        return codes
    raise AssertionError(f"{where}: unknown way of naming an action: {ast.unparse(node)}")


def recorded_codes() -> dict[str, str]:
    """Every action code the application journals, with one place that records it."""
    found: dict[str, str] = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if "/tests/" in relative or "/migrations/" in relative or "/lib/" in relative:
                continue
            module = ast.parse(path.read_text(encoding="utf-8"))
            for function in ast.walk(module):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
                    continue
                calls = [n for n in ast.walk(function) if isinstance(n, ast.Call)]
                batched = any(_name(c.func) == "record_many" for c in calls)
                for node in ast.walk(function):
                    where = f"{relative}:{getattr(node, 'lineno', 0)}"
                    if isinstance(node, ast.Call):
                        if _name(node.func) == "record" and node.args:
                            for code in _code_of(node.args[0], module, where):
                                found.setdefault(code, where)
                        for keyword in node.keywords:
                            # event="message.received", action="account.closed" (an
                            # admin action's name, action="change_email", is no code).
                            if keyword.arg in RELAYED and (
                                isinstance(keyword.value, ast.JoinedStr)
                                or (
                                    isinstance(keyword.value, ast.Constant)
                                    and DOTTED.match(str(keyword.value.value))
                                )
                            ):
                                for code in _code_of(keyword.value, module, where):
                                    found.setdefault(code, where)
                    elif (
                        batched
                        and isinstance(node, ast.Tuple)
                        and len(node.elts) == 3
                        and isinstance(node.elts[0], ast.Constant | ast.JoinedStr)
                    ):
                        # An event of record_many: (action, target, data).
                        for code in _code_of(node.elts[0], module, where):
                            found.setdefault(code, where)
    return found


def test_every_recorded_action_has_a_label() -> None:
    codes = recorded_codes()
    assert len(codes) > 70  # the scan still finds the journal's calls
    missing = {code: where for code, where in codes.items() if code not in labels.ACTION_LABELS}
    assert missing == {}, "add a label to audit/labels.py for each of these codes"


def test_the_staffs_own_actions_are_found_by_the_scan() -> None:
    codes = recorded_codes()
    for code in ("delivery.retried", "delivery.abandoned", "message.delivered", "admin.changed"):
        assert code in codes


def test_an_unknown_code_is_shown_as_it_is() -> None:
    assert labels.action_label("future.thing") == "future.thing"
    assert labels.action_label("message.delivered") == "Message distribué"


def test_details_read_as_lines_never_json() -> None:
    lines = dict(
        labels.data_lines(
            {
                "deliveries": [3, 4],
                "mailboxes": ["a@x.test"],
                "forced": True,
                "last": {"code": "no_server", "domain": "x.test"},
                "reason": "y" * 1000,
            }
        )
    )
    assert lines["distributions"] == "3, 4"
    assert lines["destinataires"] == "a@x.test"
    assert lines["forcé"] == "oui"
    assert lines["last"] == "code : no_server; domain : x.test"
    assert lines["motif"].endswith("…") and len(lines["motif"]) <= labels.MAX_VALUE + 1


@pytest.mark.django_db
def test_the_admin_shows_the_journal_in_french_and_read_only(staff_client: Client) -> None:
    journal.record(
        "delivery.abandoned",
        object_type="mailboxes.message",
        object_id=42,
        deliveries=[7, 8],
        mailboxes=["a.durand@clinique.peer.test", "b.morel@clinique.peer.test"],
    )
    listing = staff_client.get("/admin/audit/auditevent/").content.decode()
    assert "Distribution abandonnée par l&#x27;équipe" in listing
    assert "Message distribué" in listing  # the filter offers labels, not codes
    event = AuditEvent.objects.get(action="delivery.abandoned")
    page = staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/").content.decode()
    assert '<span class="staff-data__key">distributions</span> : 7, 8' in page
    assert "a.durand@clinique.peer.test, b.morel@clinique.peer.test" in page
    assert "{&quot;deliveries&quot;" not in page and '{"deliveries"' not in page
    # Still evidence: nothing to save, and a POST changes nothing.
    assert 'name="_save"' not in page
    staff_client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "x"})
    event.refresh_from_db()
    assert event.action == "delivery.abandoned"
    filtered = staff_client.get("/admin/audit/auditevent/", {"action": "delivery.abandoned"})
    assert filtered.status_code == 200
    for value in ("x" * 1000, "' OR 1=1 --", "%"):
        hostile = staff_client.get("/admin/audit/auditevent/", {"action": value})
        assert hostile.status_code == 200 and not hostile.context["cl"].result_list
