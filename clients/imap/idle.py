"""What idle clients wait on (IDLE, RFC 2177): one watcher per server process."""

from __future__ import annotations

import asyncio
import logging

from pymap.concurrent import Event

from clients.imap import store
from mailboxes.transport.inbound import ThreadedDatabase

log = logging.getLogger(__name__)

# How often the watched folders are looked at (a delivery shows within this).
IDLE_POLL_SECONDS = 0.25


class Watcher:
    """What idle clients wait on: one query every quarter second for all the folders they watch.

    Each IDLE connection polling its own folder would cost a query (and a thread hop)
    per connection per second; here a thousand idle clients on a hundred folders cost one
    query a second. A change wakes every connection watching that folder, which then
    reads its folder itself (rights asked again).
    """

    def __init__(self, db: ThreadedDatabase) -> None:
        self.db = db
        self.waiting: dict[int, int] = {}
        self.seen: dict[int, int] = {}
        self.changed: dict[int, asyncio.Event] = {}
        self.task: asyncio.Task[None] | None = None

    async def wait(
        self, folder_id: int, known: int | None, done: Event, timeout: float = 60
    ) -> None:
        """Until ``folder_id`` moves past ``known``, ``done`` is set, or ``timeout`` seconds."""
        if known is None:
            return
        seen = self.seen.setdefault(folder_id, known)
        if known < seen:
            return  # the folder moved since this connection looked: let it look
        if known > seen:
            # This connection saw a change the others are not told of yet: tell them.
            self.seen[folder_id] = known
            stale = self.changed.pop(folder_id, None)
            if stale is not None:
                stale.set()
        event = self.changed.setdefault(folder_id, asyncio.Event())
        self.waiting[folder_id] = self.waiting.get(folder_id, 0) + 1
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        changed = asyncio.create_task(event.wait())
        finished = asyncio.create_task(done.wait())
        try:
            await asyncio.wait(
                {changed, finished}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            changed.cancel()
            finished.cancel()
            self.waiting[folder_id] -= 1
            if not self.waiting[folder_id]:
                del self.waiting[folder_id]
                self.seen.pop(folder_id, None)

    async def _run(self) -> None:
        while self.waiting:
            await asyncio.sleep(IDLE_POLL_SECONDS)
            watched = list(self.waiting)
            if not watched:
                break
            try:
                found = await self.db._in_thread(store.modseqs, watched)
            except Exception:
                log.exception("imap: the idle watcher could not read the folders")
                continue
            for folder_id, seq in found.items():
                known = self.seen.get(folder_id)
                if folder_id in self.waiting:
                    self.seen[folder_id] = seq
                if known is not None and known != seq:
                    event = self.changed.pop(folder_id, None)
                    if event is not None:
                        event.set()
