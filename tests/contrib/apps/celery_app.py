"""A Celery app for the tests, on Celery's filesystem transport (a real broker in a directory)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from tests.contrib.apps.common import DATAFILE, client_options, filesystem_broker

from flagstream.contrib.celery import Flagstream

BROKER_DIR = Path(os.environ.get("FLAGSTREAM_TEST_BROKER_DIR", "/tmp/flagstream-celery-broker"))
for sub in ("queue", "processed", "control"):
    (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)

app = Celery("flagstream_tests")
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options=filesystem_broker(BROKER_DIR),
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)

flush_after = os.environ.get("FLAGSTREAM_TEST_FLUSH_AFTER_TASK")
flags = Flagstream(
    datafile=DATAFILE,
    options=client_options(),
    flush_after_task=float(flush_after) if flush_after else None,
)


@app.task(name="checkout")
def checkout(user_id: str) -> str:
    """One impression and one conversion per task; answers ``variation@pid``."""
    user = flags.client.create_user_context(user_id, {"plan": "pro"})
    assert user is not None
    decision = user.decide("checkout")
    user.track_event("purchase", {"revenue": 4200})
    return f"{decision.variation_key}@{os.getpid()}"
