"""The staff's admin in real Chromium at 1280 px: the dashboard, the delivery queue, every list.

No list may be cut at 1280 px (the width of a staff laptop): neither the page nor a table
inside it scrolls sideways. The dashboard and the queue are photographed for the docs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from charter.models import AbuseReport
from mailboxes.models import Delivery, Message, Quarantine
from mssante import demo
from tests.browser.test_webmail import log_in, mailbox_of
from tests.personas import submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"
SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots" / "admin-cut"
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def _stuck_deliveries() -> None:
    """A few recipients at other operators that do not answer, for the queue to show."""
    doctor, nurse = mailbox_of("doctor"), mailbox_of("nurse")
    message = submit(doctor, [nurse.address], subject="Compte rendu opératoire")
    Message.objects.filter(pk=message.pk).update(scan_status=Message.ScanStatus.CLEAN)
    for n, recipient in enumerate(
        [
            "jean.martin@clinique-des-lilas.mssante.fr",
            "secretariat.cardiologie@clinique-des-lilas.mssante.fr",
            "laboratoire@biologie-ouest.mssante.fr",
        ]
    ):
        domain = recipient.split("@")[1]
        Delivery.objects.create(
            message=message,
            recipient=recipient,
            remote=True,
            status=Delivery.Status.DEFERRED,
            attempts=3 + n,
            next_attempt_at=timezone.now() + timedelta(minutes=15 * (n + 1)),
            reason="unreachable",
            reason_params={
                "domain": domain,
                "problem": {
                    "code": "connection_failed",
                    "host": f"mx1.{domain}:25",
                    "error": "[Errno 111] Connection refused",
                },
            },
        )


def _cut(page: Page, width: int) -> bool:
    """Whether the page, or a table in it, is wider than the screen (scrolls sideways)."""
    if page.evaluate("document.documentElement.scrollWidth") > width:
        return True
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('#result_list, .staff-table')]
               .map(t => t.parentElement)
               .filter(box => box.scrollWidth > box.clientWidth + 1).length"""
    )
    return bool(overflow)


def _for_review() -> None:
    """A held message and a report awaiting staff, with long values (the widest rows)."""
    Quarantine.objects.create(
        message_id_header="<" + "a" * 60 + "@clinique-des-lilas.mssante.fr>",
        from_addr="secretariat.medical.chirurgie@clinique-des-lilas.mssante.fr",
        recipients=["claire.martin@hopital-demo.mssante.fr", "cardiologie@hopital-demo.mssante.fr"],
        subject="Compte rendu opératoire et ordonnance de sortie " * 3,
        size=2_345_678,
        verdict=Quarantine.Verdict.INFECTED,
        signatures=["Win.Test.EICAR_HDB-1"],
        quarantined_at=timezone.now(),
    )
    AbuseReport.objects.create(
        created_at=timezone.now(),
        sender_addr="promotions.commerciales@clinique-des-lilas.mssante.fr",
        subject="Offre exceptionnelle sur les consommables de laboratoire " * 3,
        reason="Publicité non sollicitée",
    )


def _fits(page: Page, width: int) -> None:
    assert not _cut(page, width), f"cut at {width} px: {page.url}"


def test_staff_see_the_dashboard_and_every_list_fits_1280_px(live_server, page: Page) -> None:
    demo.seed()
    _stuck_deliveries()
    _for_review()
    base = live_server.url
    page.set_viewport_size(WIDE)
    log_in(page, base, "staff", next="/admin/")
    page.goto(base + "/admin/")
    expect(page.get_by_role("heading", name="Ce qui attend l'équipe")).to_be_visible()
    expect(page.get_by_text("Distributions différées", exact=True)).to_be_visible()
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    _fits(page, WIDE["width"])
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "admin-dashboard-desktop.png"), full_page=True)

    # The busiest peer's link opens the queue filtered on it.
    page.get_by_role("link", name="clinique-des-lilas.mssante.fr").click()
    expect(page.get_by_role("heading", name="File de distribution")).to_be_visible()
    expect(page.get_by_text("jean.martin@clinique-des-lilas.mssante.fr")).to_be_visible()
    expect(page.get_by_text("laboratoire@biologie-ouest.mssante.fr")).to_have_count(0)
    page.goto(base + "/admin/mailboxes/delivery/?status__exact=deferred")
    expect(page.get_by_text("Serveur de biologie-ouest.mssante.fr injoignable")).to_be_visible()
    page.screenshot(path=str(DOCS / "admin-delivery-queue-desktop.png"), full_page=True)
    _fits(page, WIDE["width"])

    # Every list of the admin, at 1280 px: nothing cut.
    page.goto(base + "/admin/")
    lists = page.eval_on_selector_all(
        "#content-main .app-list a[href$='/'], #content-main table a[href$='/']",
        "links => [...new Set(links.map(a => a.getAttribute('href')))]"
        ".filter(h => !h.endsWith('/add/') && h.split('/').length === 5)",
    )
    assert len(lists) > 20
    cut = []
    for href in lists:
        page.goto(base + href)
        if _cut(page, WIDE["width"]):
            cut.append(href)
            SHOTS.mkdir(parents=True, exist_ok=True)
            name = href.strip("/").replace("/", "-")
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert cut == [], f"lists cut at 1280 px (screenshots in {SHOTS})"

    # The phone: the dashboard and the queue are read (Django's admin stacks its columns).
    page.set_viewport_size(PHONE)
    page.goto(base + "/admin/")
    page.screenshot(path=str(DOCS / "admin-dashboard-phone.png"), full_page=True)
    page.goto(base + "/admin/mailboxes/delivery/?status__exact=deferred")
    page.screenshot(path=str(DOCS / "admin-delivery-queue-phone.png"), full_page=True)


def test_staff_retry_a_deferred_delivery_from_the_queue(live_server, page: Page) -> None:
    demo.seed()
    _stuck_deliveries()
    base = live_server.url
    page.set_viewport_size(WIDE)
    log_in(page, base, "staff", next="/admin/")
    page.goto(base + "/admin/mailboxes/delivery/?status__exact=deferred")
    page.get_by_role("row", name="laboratoire@biologie-ouest.mssante.fr").get_by_role(
        "checkbox"
    ).check()
    page.locator("select[name=action]").select_option("retry_now")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("1 distribution(s) relancée(s)")).to_be_visible()


def test_staff_upload_the_liste_blanche_from_the_admin(live_server, page: Page, tmp_path) -> None:
    demo.seed()
    names = [f"operateur{i}.mssante.fr" for i in range(12)]
    entries = "".join(
        f"<Domaine><Nom>{name}</Nom><Description>{name}</Description>"
        f"<DNCertificatOperateur>CN=mx.{name},O=Operateur,C=FR</DNCertificatOperateur>"
        "<DateMAJ>2025-01-27T15:49:34Z</DateMAJ></Domaine>"
        for name in names
    )
    xml = tmp_path / "listeblanchemssante.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">'
        "<DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>"
        f"<ListeDomaines>{entries}</ListeDomaines></ListeBlancheMSSante>",
        encoding="utf-8",
    )
    base = live_server.url
    page.set_viewport_size(WIDE)
    log_in(page, base, "staff", next="/admin/")
    page.goto(base + "/admin/trust/listeddomain/")
    page.get_by_label("Fichier XML de la liste blanche").set_input_files(str(xml))
    page.get_by_role("button", name="Importer").click()
    expect(page.get_by_text("Liste blanche importée")).to_be_visible()
    expect(page.get_by_role("link", name="operateur11.mssante.fr")).to_be_visible()
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    _fits(page, WIDE["width"])
    page.screenshot(path=str(DOCS / "admin-liste-blanche-desktop.png"), full_page=True)
    # A file that is not a liste blanche: refused, said in French, the list kept.
    junk = tmp_path / "photo.xml"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    page.get_by_label("Fichier XML de la liste blanche").set_input_files(str(junk))
    page.get_by_role("button", name="Importer").click()
    expect(page.get_by_text("Import refusé, liste actuelle conservée", exact=False)).to_be_visible()
    expect(page.get_by_role("link", name="operateur11.mssante.fr")).to_be_visible()
