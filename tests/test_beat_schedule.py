"""Beat names its tasks by string (the only place that does): each name must be a real task."""

from __future__ import annotations

from typing import Any

import pytest

from mssante.celery import app as celery_app


@pytest.mark.parametrize("entry", sorted(celery_app.conf.beat_schedule))
def test_every_scheduled_entry_names_a_task_the_worker_knows(entry: str, settings: Any) -> None:
    # A task moved to another app changes its name: a schedule left behind would make
    # beat send a message no worker can run, silently, every period.
    name = settings.CELERY_BEAT_SCHEDULE[entry]["task"]
    celery_app.loader.import_default_modules()  # what a worker does when it starts
    assert name in celery_app.tasks, f"{entry}: {name} is not a registered task"
