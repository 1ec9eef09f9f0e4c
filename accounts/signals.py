"""What accounts tells the apps above it, without importing them.

``account_closed`` is sent inside the transaction that closes an account, with ``user``,
``by`` (staff, or None for a process) and ``reason``. A receiver that raises rolls the
closing back: the account is never closed with its boxes left open (``send``, not
``send_robust``). ``mailboxes`` closes the holder's own boxes and takes them out of the
directory.
"""

from django.dispatch import Signal

account_closed = Signal()
