"""Compose suggests colleagues from the directory."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from mssante import demo
from tests.browser.test_webmail import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_typing_dup_in_compose_suggests_the_demo_colleague_and_picking_fills_the_recipient(
    live_server, page: Page
):
    demo.seed()
    log_in(page, live_server.url, "doctor")
    page.get_by_role("button", name="Écrire un message").click()
    to = page.locator("input[name=to]")
    to.click()
    to.press_sequentially("dup", delay=50)
    option = page.get_by_role("option").filter(has_text="Dupont")
    expect(option.first).to_be_visible()
    option.first.click()
    expect(to).to_have_value("julien.dupont@cabinet-demo.mssante.fr, ")
