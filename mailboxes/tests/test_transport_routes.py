"""Where outbound mail goes (SMTP_ROUTES, MX records) and how the SMTP settings are read."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import dns.resolver
import pytest
from django.core.exceptions import ImproperlyConfigured

from mailboxes.transport import routes
from mssante import envconf


def test_a_route_in_settings_wins_over_dns(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SMTP_ROUTES = {"ch-exemple.mssante.fr": ("10.0.0.5", 2525)}
    monkeypatch.setattr(dns.resolver, "resolve", lambda *a, **k: pytest.fail("no DNS expected"))
    assert routes.hosts_for("CH-Exemple.mssante.fr.") == [routes.Host("10.0.0.5", 2525)]


def test_mx_records_are_tried_by_preference(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SMTP_ROUTES = {}
    answer = [
        SimpleNamespace(preference=20, exchange="mx2.operateur.fr."),
        SimpleNamespace(preference=10, exchange="mx1.operateur.fr."),
    ]
    monkeypatch.setattr(dns.resolver, "resolve", lambda *a, **k: answer)
    assert [h.name for h in routes.hosts_for("ch.mssante.fr")] == [
        "mx1.operateur.fr",
        "mx2.operateur.fr",
    ]


def test_a_domain_without_mx_is_its_own_server(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SMTP_ROUTES = {}

    def no_answer(*args: Any, **kwargs: Any) -> None:
        raise dns.resolver.NoAnswer()

    monkeypatch.setattr(dns.resolver, "resolve", no_answer)
    assert routes.hosts_for("ch.mssante.fr") == [
        routes.Host("ch.mssante.fr", settings.SMTP_MX_PORT)
    ]


def test_a_domain_that_does_not_exist_is_a_permanent_failure(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SMTP_ROUTES = {}

    def nxdomain(*args: Any, **kwargs: Any) -> None:
        raise dns.resolver.NXDOMAIN()

    monkeypatch.setattr(dns.resolver, "resolve", nxdomain)
    with pytest.raises(routes.RouteError) as error:
        routes.hosts_for("absent.mssante.fr")
    assert error.value.permanent


def test_smtp_routes_are_read_and_a_bad_one_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_ROUTES", "a.fr=127.0.0.1:2525, B.fr.=[::1]:25")
    assert envconf.routes("SMTP_ROUTES") == {"a.fr": ("127.0.0.1", 2525), "b.fr": ("::1", 25)}
    monkeypatch.setenv("SMTP_ROUTES", "a.fr=127.0.0.1")
    with pytest.raises(ImproperlyConfigured, match="SMTP_ROUTES"):
        envconf.routes("SMTP_ROUTES")


def test_a_listen_address_without_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_LISTEN", "192.0.2.1")
    with pytest.raises(ImproperlyConfigured, match="SMTP_LISTEN"):
        envconf.host_port("SMTP_LISTEN", "127.0.0.1:2525")
    monkeypatch.setenv("SMTP_LISTEN", "192.0.2.1:25")
    assert envconf.host_port("SMTP_LISTEN", "127.0.0.1:2525") == ("192.0.2.1", 25)


def test_a_missing_certificate_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_TLS_CERT", "/nonexistent/cert.pem")
    with pytest.raises(ImproperlyConfigured, match="SMTP_TLS_CERT"):
        envconf.existing_file("SMTP_TLS_CERT")
