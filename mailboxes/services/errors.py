"""The refusals a user can cause: ``str()`` of each is the French reason to show."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


class SubmissionError(Exception):
    """A message the user asked to send was refused; ``str()`` is the French reason."""


class MailboxError(Exception):
    """A mailbox could not be created; ``str()`` is the French reason."""


class FolderError(Exception):
    """A folder operation was refused; ``str()`` is the French reason."""


class DraftError(Exception):
    """A draft operation was refused (limits); ``str()`` is the French reason."""


class MembershipError(Exception):
    """A grant of access to a mailbox was refused; ``str()`` is the French reason."""


class TokenError(Exception):
    """An API token could not be created; ``str()`` is the French reason."""


class ScopeError(PermissionDenied):
    """An API token used beyond what its holder agreed to; ``str()`` is the French reason."""


class IdempotencyConflict(Exception):
    """An idempotency key already used for another request; ``str()`` is the French reason."""
