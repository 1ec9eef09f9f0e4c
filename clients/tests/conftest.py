"""Fixtures of the clients' tests: our operator's certificate (one CA) and a submission server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from clients.submission import SubmissionHandler, make_controller
from tests.smtp_peers import HERE, Operator, free_port, make_operator, shared_connections


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def here(ca: trustme.CA, tmp_path: Path, settings: Any) -> Operator:
    """Us: our certificates and settings for the domain ``HERE``."""
    operator = make_operator(ca, HERE, tmp_path / "here")
    operator.settings_for(settings)
    return operator


def client_facing(operator: Operator) -> ssl.SSLContext:
    """Our certificate as clients see it: no client certificate asked."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(operator.cert, operator.key)
    return context


@contextmanager
def submission_server(operator: Operator, *, implicit_tls: bool = False) -> Iterator[int]:
    """The real submission server (our handler) on a free port; its port."""
    override = shared_connections()
    if override:
        override["default"].inc_thread_sharing()
    controller = make_controller(
        hostname="127.0.0.1",
        port=free_port(),
        implicit_tls=implicit_tls,
        handler=SubmissionHandler(connections_override=override, keep_connections=bool(override)),
        tls_context=client_facing(operator),
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
        if override:
            override["default"].dec_thread_sharing()


@pytest.fixture
def port(here: Operator) -> Iterator[int]:
    with submission_server(here) as port:
        yield port


@pytest.fixture
def tls_port(here: Operator) -> Iterator[int]:
    with submission_server(here, implicit_tls=True) as port:
        yield port


@contextmanager
def imap_server(operator: Operator) -> Iterator[Any]:
    """The real IMAP server (our backend) on free ports: STARTTLS (.port) and TLS (.tls_port)."""
    from clients.imap.server import start_imap_server
    from mailboxes.transport.inbound import ThreadedDatabase

    override = shared_connections()
    if override:
        override["default"].inc_thread_sharing()
    handle = start_imap_server(
        "127.0.0.1",
        0,
        client_facing(operator),
        tls_port=0,
        db=ThreadedDatabase(connections_override=override, keep_connections=bool(override)),
    )
    try:
        yield handle
    finally:
        handle.stop()
        if override:
            override["default"].dec_thread_sharing()


@pytest.fixture
def imap(here: Operator) -> Iterator[Any]:
    with imap_server(here) as handle:
        yield handle
