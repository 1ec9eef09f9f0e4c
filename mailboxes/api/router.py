"""The API object: its authentication, its parser, its refusals and its routes."""

from __future__ import annotations

from ninja import NinjaAPI

from mailboxes.api import errors, folders, messages
from mailboxes.api.auth import TokenAuth
from mailboxes.api.payload import SafeParser

api = NinjaAPI(
    title="API MSSanté",
    version="1",
    description=(
        "Envoi et réception de messages MSSanté par un logiciel (boîte applicative, ou boîte "
        "nominative ou organisationnelle avec l'accord de son titulaire). Un jeton porte sur "
        "une seule boîte. Voir docs/api.md."
    ),
    urls_namespace="api",
    auth=TokenAuth(),
    parser=SafeParser(),
)
errors.install(api)
api.add_router("", messages.router)
api.add_router("", folders.router)
