"""Under the strict Content-Security-Policy the pages still work, with no violation reported.

The browser reports every blocked script, style, image, connection or frame as a
``securitypolicyviolation`` event and a console error: both are collected on every
page a doctor, a patient and staff go through (DSFR's scripts, htmx's autosave, the
upload progress, the directory suggestions, the search, the error pages), and axe
still finds no accessibility violation there.
"""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from mssante import demo
from tests.browser.test_webmail import PDF, log_in, mailbox_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts (Playwright's init scripts are not
# subject to the page's CSP): keeps every violation the page reports.
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watch:
    """Console errors and CSP violations of one page, across navigations."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(LISTEN)
        page.on("console", self._on_console)

    def _on_console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and "Content Security Policy" in text:
            self.console.append(text)

    def check(self, where: str, *, axe: bool = True) -> None:
        violations = self.page.evaluate("window.__csp || []")
        assert not violations, (where, violations)
        assert not self.console, (where, self.console)
        header = self.page.evaluate(
            "fetch(location.href, {method: 'HEAD'}).then(r => r.headers.get("
            "'content-security-policy'))"
        )
        assert header and "script-src 'self'" in header, (where, header)
        if axe:
            results = Axe().run(self.page)
            assert results.violations_count == 0, (where, results.generate_report())


def test_a_doctor_goes_through_the_webmail_under_the_csp(live_server: Any, page: Page) -> None:
    demo.seed()
    nurse_box = mailbox_of("nurse")
    base = live_server.url
    watch = Watch(page)

    page.goto(base + "/connexion/")
    watch.check("login")
    log_in(page, base, "doctor")
    watch.check("inbox")

    # Compose: htmx autosave, the upload with its progress bar, directory suggestions.
    page.get_by_role("button", name="Écrire un message").click()
    expect(page.get_by_role("heading", name="Nouveau message")).to_be_visible()
    to = page.locator("#id_to")
    to.click()
    to.press_sequentially("dup", delay=50)
    expect(page.get_by_role("option").filter(has_text="Dupont").first).to_be_visible()
    to.fill(nurse_box.address)
    page.locator("#id_subject").fill("Sous CSP")
    page.locator("#id_text").fill("Bonjour.")
    page.locator("#upload-files").set_input_files(
        {"name": "cr.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    expect(page.locator("#draft-files")).to_contain_text("cr.pdf")
    expect(page.locator("#draft-status")).to_contain_text("Brouillon enregistré")
    watch.check("compose")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Message envoyé.")).to_be_visible()
    watch.check("sent")

    # Search: posted, then the results page; the term is not in the address.
    page.get_by_label("Rechercher dans la boîte").fill("Sous CSP")
    page.get_by_label("Rechercher dans la boîte").press("Enter")
    expect(page.get_by_role("heading", name="Recherche : « Sous CSP »")).to_be_visible()
    assert "Sous" not in page.url and "CSP" not in page.url
    watch.check("search")
    page.reload()
    expect(page.get_by_role("heading", name="Recherche : « Sous CSP »")).to_be_visible()

    # Reading (DSFR's menus and collapses run), the directory, the preferences.
    page.get_by_role("link", name="Sous CSP").first.click()
    expect(page.get_by_role("heading", name="Sous CSP")).to_be_visible()
    watch.check("read")
    page.goto(base + "/annuaire/")
    page.get_by_label("Nom ou adresse").fill("Dupont")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", name="1 résultat")).to_be_visible()
    assert "Dupont" not in page.url
    watch.check("directory")
    page.go_back()
    expect(page.get_by_label("Nom ou adresse")).to_be_visible()
    page.goto(base + "/messagerie/preferences/")
    watch.check("preferences")

    # Error pages are DSFR pages under the same policy.
    page.goto(base + "/messagerie/message/999999/")
    expect(page.get_by_role("heading", name="Page non trouvée")).to_be_visible()
    watch.check("404")
    page.goto(base + "/admin/")
    expect(page.get_by_role("heading", name="Accès refusé")).to_be_visible()
    watch.check("403 admin")


def test_a_patient_and_staff_under_the_csp(live_server: Any, browser: Browser) -> None:
    demo.seed()
    base = live_server.url
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    page = context.new_page()
    watch = Watch(page)
    log_in(page, base, "patient")
    watch.check("patient home")
    page.goto(base + "/patient/notifications/")
    watch.check("patient preferences")
    context.close()

    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    page = context.new_page()
    watch = Watch(page)
    log_in(page, base, "staff")
    page.goto(base + "/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    # Django's admin is not ours to make accessible: only the policy is checked there.
    watch.check("admin", axe=False)
    page.goto(base + "/admin/mailboxes/mailbox/")
    watch.check("admin list", axe=False)
    page.goto(base + "/api/v1/docs")
    expect(page.locator(".swagger-ui").first).to_be_visible()
    watch.check("api docs", axe=False)
    context.close()
