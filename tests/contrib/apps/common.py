"""What the test apps share: the datafile, and options that hold events until the process stops."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DATAFILE = Path(__file__).with_name("datafile.json")

# A long flush interval and a large batch: nothing is sent while the server runs, so the
# tests show that what is queued at shutdown is delivered by the shutdown path.
HOLD = {"flush_interval": 600.0, "batch_size": 10_000}


def client_options() -> dict[str, object]:
    """Optimizely(...) options: the collector's endpoint (from the environment) and HOLD."""
    return {
        "event_endpoint": os.environ.get("FLAGSTREAM_EVENT_ENDPOINT", "http://127.0.0.1:9/v1/events"),
        "event_processor_options": HOLD,
    }


def filesystem_broker(directory: Path) -> dict[str, Any]:
    """Celery's filesystem transport in ``directory`` (its ``queue``, ``processed`` and ``control`` folders)."""
    return {
        "control_folder": str(directory / "control"),  # kombu's default is ./control, in the repo
        "data_folder_in": str(directory / "queue"),
        "data_folder_out": str(directory / "queue"),
        "processed_folder": str(directory / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
