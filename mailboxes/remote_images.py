"""Remote images of a read message, served through the portal (see mssante.lib.imageproxy).

The reading view rewrites each allowed remote image to a URL of the proxy view
carrying the image's address signed together with the entry's id: the proxy
fetches only addresses that a message the user can read actually shows, and
only for that user (the entry is looked up through the user's own access).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from accounts.models import User
from mailboxes import selectors
from mssante.lib import imageproxy

log = logging.getLogger(__name__)

_SALT = "mailboxes.remote_images"
# Longer addresses are dropped rather than proxied (a signed token rides in the URL).
MAX_URL = 2048
_MAX_TOKEN = 4096


class NotServed(Exception):
    """The image is not served (bad token, not readable, refused by the proxy's rules)."""


def url_maker(entry_id: int) -> Callable[[str], str | None]:
    """Map a remote image URL of entry ``entry_id`` to its proxy URL (None: dropped)."""
    base = reverse("webmail_remote_image", args=[entry_id])

    def make(url: str) -> str | None:
        if len(url) > MAX_URL:
            return None
        token = signing.dumps([entry_id, url], salt=_SALT, compress=True)
        return f"{base}?u={token}"

    return make


def fetch(user: User, entry_id: int, token: str) -> imageproxy.FetchedImage:
    """The image a proxy URL names, if ``user`` may read its message (raises NotServed)."""
    # The user's access first: a token never opens someone else's message.
    entry = selectors.get_entry(user, entry_id)
    if len(token) > _MAX_TOKEN:
        raise NotServed
    try:
        value: Any = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise NotServed from None
    if not (isinstance(value, list) and len(value) == 2 and value[0] == entry.pk):
        raise NotServed
    url = value[1]
    if not isinstance(url, str):
        raise NotServed
    try:
        return imageproxy.fetch_image(url, allowed_networks=settings.REMOTE_IMAGES_ALLOWED_NETWORKS)
    except imageproxy.ImageFetchError:
        # No address in the log: it is part of the message.
        log.info("remote image of entry %s not served", entry.pk)
        raise NotServed from None
