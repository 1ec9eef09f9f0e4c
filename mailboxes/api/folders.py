"""``/mailboxes/{address}/messages``: the folders of the token's mailbox, a page at a time."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router

from mailboxes import selectors
from mailboxes.api.auth import token_of
from mailboxes.api.errors import ApiError, field_error
from mailboxes.api.schemas import (
    LIST_MESSAGES,
    REFUSALS,
    ErrorOut,
    ListQuery,
    MessagePage,
    folder_name,
    iso,
    links,
)
from mailboxes.models import ApiToken, Folder

router = Router()


def folder_of(token: ApiToken, name: str) -> Folder:
    """A folder of the token's mailbox by role (inbox, sent, archive, trash) or custom name."""
    folder = selectors.folder_named(token.mailbox, name)
    if folder is None:
        # 422: the request is well formed, the folder just does not exist in this box.
        raise ApiError(
            422,
            "unknown_folder",
            _(
                "Champ « folder » : dossier inconnu « %(name)s » (inbox, sent, archive, trash "
                "ou le nom d'un dossier de la boîte)."
            )
            % {"name": name},
        )
    return folder


@router.get(
    "/mailboxes/{address}/messages",
    response={200: MessagePage, 422: ErrorOut, **REFUSALS},
    summary="Les messages d'un dossier, du plus récent au plus ancien",
    operation_id=LIST_MESSAGES,
    openapi_extra={"responses": {200: {"links": links("$response.body#/messages/0/id")}}},
)
def list_messages(request: HttpRequest, address: str, params: Query[ListQuery]) -> dict[str, Any]:
    """One page of a folder; pass ``next_cursor`` back as ``cursor`` for the next one."""
    token = token_of(request)
    if address.strip().lower() != token.mailbox.address.lower():
        raise ApiError(
            403,
            "wrong_mailbox",
            _("Ce jeton ne donne accès qu'à la boîte %(address)s.")
            % {"address": token.mailbox.address},
        )
    folder = folder_of(token, params.folder)
    if params.cursor and selectors.parse_cursor(params.cursor) is None:
        raise field_error("cursor", _("curseur illisible : reprenez le « next_cursor » reçu"))
    page = selectors.folder_page(
        folder, before=params.cursor, limit=min(params.limit, settings.API_PAGE_MAX)
    )
    return {
        "messages": [
            {
                "id": e.message.public_id,
                "message_id": e.message.message_id,
                "from_addr": e.message.from_addr,
                "from_via": e.message.from_via,
                "to": list(e.message.to_addrs or []),
                "subject": e.message.subject,
                "date": iso(e.message.date),
                "size": e.message.size,
                "has_attachments": bool(e.message.attachments),
                "folder": folder_name(e.folder),
                "seen": e.seen,
                "flagged": e.flagged,
                "received_at": iso(e.received_at),
            }
            for e in page.entries
        ],
        "next_cursor": page.next_cursor,
    }
