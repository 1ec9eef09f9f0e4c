"""A client given only an address finds our servers (Thunderbird autoconfig, Outlook Autodiscover)."""

from __future__ import annotations

from typing import Any

import pytest
from defusedxml import ElementTree
from django.test import Client

from mailboxes.models import HostedDomain
from tests import factories

pytestmark = pytest.mark.django_db

DOMAIN = "hopital.mssante.test"
REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>{address}</EMailAddress>
  <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request></Autodiscover>"""


@pytest.fixture(autouse=True)
def servers(settings: Any) -> None:
    settings.CLIENTS_PUBLIC_HOST = "mail.hopital.mssante.test"
    factories.hosted_domain(DOMAIN)


@pytest.mark.parametrize(
    "url", ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"]
)
def test_thunderbird_finds_imap_and_submission_with_starttls(client: Client, url: str) -> None:
    response = client.get(url, {"emailaddress": f"dr.martin@{DOMAIN}"})
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    incoming = root.find("emailProvider/incomingServer")
    assert incoming is not None and incoming.get("type") == "imap"
    assert incoming.findtext("hostname") == "mail.hopital.mssante.test"
    assert (incoming.findtext("port"), incoming.findtext("socketType")) == ("143", "STARTTLS")
    outgoing = [(s.findtext("port"), s.findtext("socketType")) for s in root.iter("outgoingServer")]
    assert outgoing == [("587", "STARTTLS"), ("465", "SSL")]
    assert root.findtext("emailProvider/domain") == DOMAIN


def test_outlook_autodiscover_answers_pox_settings(client: Client) -> None:
    address = f"dr.martin@{DOMAIN}"
    response = client.post(
        "/autodiscover/autodiscover.xml", REQUEST.format(address=address), content_type="text/xml"
    )
    assert response.status_code == 200
    ns = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    root = ElementTree.fromstring(response.content)
    protocols = {
        p.findtext(f"{ns}Type"): (p.findtext(f"{ns}Port"), p.findtext(f"{ns}LoginName"))
        for p in root.iter(f"{ns}Protocol")
    }
    assert protocols == {"IMAP": ("143", address), "SMTP": ("587", address)}


@pytest.mark.parametrize(
    "address",
    ["someone@gmail.com", "", "pas une adresse", "x" * 5000, "patient@patient.mssante.test"],
)
def test_addresses_we_do_not_serve_get_404(client: Client, address: str) -> None:
    HostedDomain.objects.create(name="patient.mssante.test", kind=HostedDomain.Kind.PATIENT)
    assert client.get("/mail/config-v1.1.xml", {"emailaddress": address}).status_code == 404
    body = REQUEST.format(address=address)
    assert (
        client.post("/autodiscover/autodiscover.xml", body, content_type="text/xml").status_code
        == 404
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
        b"<x>" * 10000,
    ],
)
def test_hostile_autodiscover_bodies_are_refused_cleanly(client: Client, body: bytes) -> None:
    response = client.post("/autodiscover/autodiscover.xml", body, content_type="text/xml")
    assert response.status_code in (400, 413)


def test_a_form_posted_to_autodiscover_gets_400_not_500(client: Client) -> None:
    """Found by the authorisation matrix: a multipart body was read before the view."""
    response = client.post("/autodiscover/autodiscover.xml", {"EMailAddress": "a@b.test"})
    assert response.status_code == 400
