"""The remote image proxy's rules: public addresses only, after resolution and at every redirect."""

from __future__ import annotations

import ipaddress

import pytest

from mssante.lib.imageproxy import ImageFetchError, fetch_image, public_address
from tests.image_server import PNG, image_server

LOCAL = ["127.0.0.1/32"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.3.2.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # shared (carrier NAT)
        "169.254.169.254",  # link-local: cloud metadata
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert public_address(ipaddress.ip_address(address))


def resolver(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "answers",
    [("10.0.0.5",), ("93.184.216.34", "127.0.0.1"), ("::ffff:192.168.0.1",)],
    ids=["private", "one-of-several", "mapped"],
)
def test_a_name_resolving_to_any_non_public_address_is_refused_before_connecting(
    answers: tuple[str, ...],
) -> None:
    with pytest.raises(ImageFetchError, match="non-public"):
        fetch_image("http://images.example.test/logo.png", resolve=resolver(*answers))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://images.example.test/logo.png",
        "file:///etc/passwd",
        "http://user:secret@images.example.test/logo.png",
        "http:///logo.png",
        "http://[::1/logo.png",
    ],
)
def test_urls_outside_http_and_https_or_with_credentials_are_refused(url: str) -> None:
    with pytest.raises(ImageFetchError):
        fetch_image(url, resolve=resolver("93.184.216.34"))


def test_an_unusual_port_on_a_public_address_is_refused() -> None:
    with pytest.raises(ImageFetchError, match="port 25"):
        fetch_image("http://images.example.test:25/logo.png", resolve=resolver("93.184.216.34"))


def test_loopback_is_refused_even_when_a_server_listens_there() -> None:
    with image_server() as server, pytest.raises(ImageFetchError, match="non-public"):
        fetch_image(server.url("/logo.png"))
    assert server.requests == []


def test_an_allowed_test_network_serves_an_image_without_cookie_or_referrer() -> None:
    with image_server() as server:
        image = fetch_image(server.url("/logo.png"), allowed_networks=LOCAL)
    assert image.content_type == "image/png" and image.data == PNG
    sent = {k.lower() for k in server.requests[0]}
    assert not sent & {"cookie", "referer", "authorization"}


def test_a_redirect_to_a_refused_address_is_refused() -> None:
    with image_server(redirects={"/go.png": "http://127.0.0.2/logo.png"}) as server:
        with pytest.raises(ImageFetchError, match="non-public"):
            fetch_image(server.url("/go.png"), allowed_networks=LOCAL)
        # And a redirect to an allowed place is followed.
        server_url = server.url("/logo.png")
        with image_server(redirects={"/again.png": server_url}) as other:
            image = fetch_image(other.url("/again.png"), allowed_networks=LOCAL)
    assert image.data == PNG


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/page.html", "content type"),
        ("/image.svg", "content type"),
        ("/fake.png", "does not match"),
        ("/big.png", "too large"),
        ("/missing.png", "HTTP 404"),
    ],
)
def test_only_real_raster_images_of_bounded_size_are_served(path: str, reason: str) -> None:
    with image_server() as server, pytest.raises(ImageFetchError, match=reason):
        fetch_image(server.url(path), allowed_networks=LOCAL)


def test_redirect_loops_stop() -> None:
    with (
        image_server(redirects={"/self.png": "/self.png"}) as server,
        pytest.raises(ImageFetchError, match="too many redirects"),
    ):
        fetch_image(server.url("/self.png"), allowed_networks=LOCAL)
