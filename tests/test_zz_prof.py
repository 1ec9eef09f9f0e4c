import cProfile
import json
import pstats
import time

from django.test import Client


def test_prof(laboratoire, doctor, monkeypatch, settings):
    settings.API_RATE_LIMIT = 10**6
    from mailboxes.services import queue

    monkeypatch.setattr(queue, "enqueue", lambda task, ids: None)
    c = Client()
    h = {"Authorization": f"Bearer {laboratoire.raw}"}
    one = {"to": [doctor.address], "subject": "Résultats", "text": "Compte rendu. " * 1400}
    batch = json.dumps({"messages": [one] * 50})
    c.post("/api/v1/messages/batch", batch, content_type="application/json", headers=h)
    pr = cProfile.Profile()
    t = time.process_time()
    pr.enable()
    for _ in range(4):
        r = c.post("/api/v1/messages/batch", batch, content_type="application/json", headers=h)
        assert r.status_code == 200
    pr.disable()
    print("CPU ms per message in batch:", (time.process_time() - t) * 1000 / 200)
    pstats.Stats(pr).sort_stats("cumulative").print_stats(70)
