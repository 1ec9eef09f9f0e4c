"""The REST API for software (``/api/v1/``): send, follow, list, fetch and file messages.

Each token is scoped to one mailbox. Every refusal is JSON ``{"code", "message"}``
with the message in French naming the rule; the OpenAPI document is
``/api/v1/openapi.json`` and a readable page ``/api/v1/docs``.

One module per concern: ``router`` (the API object), ``auth`` (the token), ``errors``
(refusals), ``payload`` (reading requests), ``schemas`` (the document's models),
``messages`` and ``folders`` (the endpoints). Endpoints parse and call one service.
"""

from mailboxes.api.router import api

__all__ = ["api"]
