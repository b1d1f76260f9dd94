"""The SDK adapters of ``bench/peers.py`` (imported in its child processes only), and its loopback server.

Every adapter decides the same thing: flag/experiment ``exp``, variations
``control`` and ``treatment`` at 50/50, behind one audience (``country`` is
``US``), for a user with ``country=US``; and has its exposure path on. Each
offers ``call(user_id)``, ``reset_count()`` (after the warm-up), ``exposures()``
(flushes, then counts what the run produced), ``close()`` and ``version``.

``python bench/peers_sdks.py --serve`` is the loopback server: it serves
Statsig's config specs and receives Statsig's and LaunchDarkly's event posts,
counting exposures (``GET /count``, ``POST /reset``).
"""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

COUNTRY = {"country": "US"}
VARIATIONS = ("control", "treatment")


def _once_stable(read, on_change=None, quiet: float = 1.0) -> int:
    """``read()`` once it has not changed for ``quiet`` seconds (posts may still be in flight)."""
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < quiet:
        now = read()
        if now != last:
            last, stable_since = now, time.monotonic()
            if on_change is not None:
                on_change()
        time.sleep(0.05)
    return last


def _wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


# -- Optimizely datafile (flagstream and optimizely-sdk) ----------------------------------

DATAFILE = json.dumps(
    {
        "version": "4",
        "accountId": "12001",
        "projectId": "12002",
        "revision": "1",
        "anonymizeIP": True,
        "botFiltering": False,
        "sendFlagDecisions": True,
        "attributes": [{"id": "111", "key": "country"}],
        "audiences": [
            {
                "id": "201",
                "name": "US",
                "conditions": '["and", ["or", ["or", {"name": "country", "type": "custom_attribute", '
                '"match": "exact", "value": "US"}]]]',
            }
        ],
        "typedAudiences": [],
        "events": [],
        "groups": [],
        "experiments": [
            {
                "id": "401",
                "key": "exp_test",
                "status": "Running",
                "layerId": "501",
                "audienceIds": ["201"],
                "forcedVariations": {},
                "variations": [
                    {"id": "4011", "key": "control", "featureEnabled": True, "variables": []},
                    {"id": "4012", "key": "treatment", "featureEnabled": True, "variables": []},
                ],
                "trafficAllocation": [
                    {"entityId": "4011", "endOfRange": 5000},
                    {"entityId": "4012", "endOfRange": 10000},
                ],
            }
        ],
        "featureFlags": [
            {"id": "801", "key": "exp", "experimentIds": ["401"], "rolloutId": "", "variables": []}
        ],
        "rollouts": [],
        "integrations": [],
    }
)


class _CountingDispatcher:
    """Counts the visitors of each request it is handed (Optimizely's ``dispatch_event`` duck type)."""

    def __init__(self) -> None:
        self.visitors = 0

    def dispatch_event(self, log_event) -> None:
        body = getattr(log_event, "body", None)
        if body is not None:  # flagstream: the bytes it would send
            self.visitors += body.count(b'"visitor_id":')
        else:  # optimizely-sdk: the params it would serialize
            self.visitors += len(log_event.params["visitors"])


class Flagstream:
    def __init__(self) -> None:
        import flagstream
        from flagstream import _build

        self.version = f"{flagstream.__version__} ({_build.BUILD.split(' (')[0]})"
        self.dispatcher = _CountingDispatcher()
        self.client = flagstream.Optimizely(DATAFILE, event_dispatcher=self.dispatcher)
        make = self.client.create_user_context
        self.call = lambda user_id: make(user_id, COUNTRY).decide("exp")

    def reset_count(self) -> None:
        self.client.flush(10.0)
        self.dispatcher.visitors = 0

    def exposures(self) -> int:
        self.client.flush(30.0)
        return self.dispatcher.visitors

    def close(self) -> None:
        self.client.close()


class OptimizelySDK:
    def __init__(self) -> None:
        from optimizely import optimizely
        from optimizely.event.event_processor import BatchEventProcessor

        logging.getLogger("optimizely").setLevel(logging.CRITICAL)
        self.version = version("optimizely-sdk")
        self.dispatcher = _CountingDispatcher()
        self.processor = BatchEventProcessor(self.dispatcher, start_on_init=True)  # its defaults
        self.client = optimizely.Optimizely(DATAFILE, event_processor=self.processor)
        make = self.client.create_user_context
        self.call = lambda user_id: make(user_id, COUNTRY).decide("exp")

    def _drain(self) -> None:
        # flush() only queues a signal; the count is final once it stops changing.
        self.processor.flush()
        _wait_until(self.processor.event_queue.empty, 60.0)
        _once_stable(lambda: self.dispatcher.visitors, self.processor.flush)

    def reset_count(self) -> None:
        self._drain()
        self.dispatcher.visitors = 0

    def exposures(self) -> int:
        self._drain()
        return self.dispatcher.visitors

    def close(self) -> None:
        self.client.close()


# -- Eppo: fully offline, its assignment logger is the sink ------------------------------

EPPO_UFC = {
    "createdAt": "2024-01-01T00:00:00Z",
    "format": "SERVER",
    "environment": {"name": "bench"},
    "flags": {
        "exp": {
            "key": "exp",
            "enabled": True,
            "variationType": "STRING",
            "totalShards": 10000,
            "variations": {v: {"key": v, "value": v} for v in VARIATIONS},
            "allocations": [
                {
                    "key": "a1",
                    "doLog": True,
                    "rules": [
                        {"conditions": [{"attribute": "country", "operator": "ONE_OF", "value": ["US"]}]}
                    ],
                    "splits": [
                        {
                            "variationKey": "control",
                            "shards": [{"salt": "exp", "ranges": [{"start": 0, "end": 5000}]}],
                        },
                        {
                            "variationKey": "treatment",
                            "shards": [{"salt": "exp", "ranges": [{"start": 5000, "end": 10000}]}],
                        },
                    ],
                }
            ],
        }
    },
}


class Eppo:
    def __init__(self) -> None:
        import eppo_client
        from eppo_client import AssignmentLogger, ClientConfig, Configuration

        class Capture(AssignmentLogger):
            def __init__(self) -> None:
                super().__init__()
                self.events = 0

            def log_assignment(self, event) -> None:
                self.events += 1

        self.version = version("eppo-server-sdk")
        self.logger = Capture()
        config = Configuration(flags_configuration=json.dumps(EPPO_UFC).encode())
        self.client = eppo_client.init(
            ClientConfig(
                api_key="bench",
                assignment_logger=self.logger,
                poll_interval_seconds=None,
                initial_configuration=config,
            )
        )
        get = self.client.get_string_assignment
        self.call = lambda user_id: get("exp", user_id, COUNTRY, "control")

    def reset_count(self) -> None:
        self.logger.events = 0

    def exposures(self) -> int:
        return self.logger.events

    def close(self) -> None:
        self.client.shutdown() if hasattr(self.client, "shutdown") else None


# -- Statsig and LaunchDarkly: exposures posted to the loopback server --------------------

STATSIG_DCS = {
    "has_updates": True,
    "time": 1,
    "response_format": "dcs-v2",
    "feature_gates": {},
    "layer_configs": {},
    "experiment_to_layer": {},
    "dynamic_configs": {
        "exp": {
            "type": "dynamic_config",
            "entity": "experiment",
            "salt": "exp-salt",
            "enabled": True,
            "isActive": True,
            "idType": "userID",
            "version": 1,
            "defaultValue": {},
            "rules": [
                {
                    "name": "g0",
                    "id": "g0",
                    "salt": "g0",
                    "groupName": "Control",
                    "isExperimentGroup": True,
                    "passPercentage": 100,
                    "idType": "userID",
                    "conditions": ["c_us", "c_lt500"],
                    "returnValue": {"v": "control"},
                },
                {
                    "name": "g1",
                    "id": "g1",
                    "salt": "g1",
                    "groupName": "Treatment",
                    "isExperimentGroup": True,
                    "passPercentage": 100,
                    "idType": "userID",
                    "conditions": ["c_us", "c_lt1000"],
                    "returnValue": {"v": "treatment"},
                },
            ],
        }
    },
    "condition_map": {
        "c_us": {
            "type": "user_field",
            "field": "country",
            "operator": "any",
            "targetValue": ["US"],
            "additionalValues": {},
            "idType": "userID",
        },
        "c_lt500": {
            "type": "user_bucket",
            "operator": "lt",
            "targetValue": 500,
            "field": None,
            "additionalValues": {"salt": "exp-salt"},
            "idType": "userID",
        },
        "c_lt1000": {
            "type": "user_bucket",
            "operator": "lt",
            "targetValue": 1000,
            "field": None,
            "additionalValues": {"salt": "exp-salt"},
            "idType": "userID",
        },
    },
}

LD_FLAGS = {
    "flags": {
        "exp": {
            "key": "exp",
            "version": 1,
            "on": True,
            "salt": "exp",
            "variations": list(VARIATIONS),
            "offVariation": 0,
            "fallthrough": {"variation": 0},
            "targets": [],
            "contextTargets": [],
            "prerequisites": [],
            "trackEvents": False,
            "trackEventsFallthrough": False,
            "rules": [
                {
                    "id": "r1",
                    "trackEvents": False,
                    "clauses": [
                        {
                            "contextKind": "user",
                            "attribute": "country",
                            "op": "in",
                            "values": ["US"],
                            "negate": False,
                        }
                    ],
                    "rollout": {
                        "kind": "experiment",
                        "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}],
                    },
                }
            ],
        }
    }
}


class LoopbackServer:
    """The ``--serve`` process: started per child, so its CPU is not the SDK's process's."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def count(self) -> int:
        with urllib.request.urlopen(self.url + "/count", timeout=5) as response:
            return json.loads(response.read())["exposures"]

    def reset(self) -> None:
        urllib.request.urlopen(
            urllib.request.Request(self.url + "/reset", b"", method="POST"), timeout=5
        ).close()

    def settle(self) -> int:
        """The count once it stops changing (the SDK's last posts may still be in flight)."""
        return _once_stable(self.count)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)


class Statsig:
    def __init__(self) -> None:
        from statsig_python_core import Statsig as Client
        from statsig_python_core import StatsigOptions, StatsigUser

        self.version = version("statsig-python-core")
        self.server = LoopbackServer()
        options = StatsigOptions(
            specs_url=self.server.url + "/v2/download_config_specs",
            log_event_url=self.server.url + "/v1/log_event",
            enable_id_lists=False,
            disable_country_lookup=True,
            output_log_level="none",
        )
        self.client = Client("secret-bench", options)
        self.client.initialize().wait()
        get = self.client.get_experiment
        self.call = lambda user_id: get(StatsigUser(user_id=user_id, country="US"), "exp").group_name
        if self.call("probe") is None:
            raise RuntimeError("statsig did not load the loopback config specs")

    def reset_count(self) -> None:
        self.client.flush_events().wait()
        self.server.settle()
        self.server.reset()

    def exposures(self) -> int:
        self.client.flush_events().wait()
        return self.server.settle()

    def close(self) -> None:
        self.client.shutdown().wait()
        self.server.close()


class LaunchDarkly:
    def __init__(self) -> None:
        from ldclient import Context
        from ldclient.client import LDClient
        from ldclient.config import Config
        from ldclient.integrations import Files

        logging.getLogger("ldclient").setLevel(logging.CRITICAL)
        self.version = version("launchdarkly-server-sdk")
        self.server = LoopbackServer()
        self.flags = Path(tempfile.mkdtemp()) / "flags.json"
        self.flags.write_text(json.dumps(LD_FLAGS))
        config = Config(
            "sdk-bench",
            update_processor_class=Files.new_data_source(paths=[str(self.flags)]),
            events_uri=self.server.url,
            diagnostic_opt_out=True,
        )
        self.client = LDClient(config, start_wait=5)
        variation = self.client.variation
        builder = Context.builder
        self.call = lambda user_id: variation("exp", builder(user_id).set("country", "US").build(), "control")

    def reset_count(self) -> None:
        self.client.flush()
        self.server.settle()
        self.server.reset()

    def exposures(self) -> int:
        self.client.flush()
        return self.server.settle()

    def close(self) -> None:
        self.client.close()
        self.server.close()


# -- GrowthBook: fully offline, per-request instances ------------------------------------

GB_FEATURES = {
    "exp": {
        "defaultValue": "control",
        "rules": [
            {
                "key": "exp",
                "seed": "exp",
                "hashAttribute": "id",
                "hashVersion": 2,
                "condition": {"country": "US"},
                "variations": list(VARIATIONS),
                "weights": [0.5, 0.5],
                "coverage": 1.0,
            }
        ],
    }
}


class GrowthBook:
    def __init__(self) -> None:
        from growthbook import GrowthBook as Client

        self.version = version("growthbook")
        self.viewed = 0

        def viewed(experiment, result, *args, **kwargs) -> None:
            self.viewed += 1

        def call(user_id: str) -> object:
            gb = Client(
                attributes={"id": user_id, "country": "US"}, features=GB_FEATURES, on_experiment_viewed=viewed
            )
            value = gb.get_feature_value("exp", "control")
            gb.destroy()
            return value

        self.call = call

    def reset_count(self) -> None:
        self.viewed = 0

    def exposures(self) -> int:
        return self.viewed

    def close(self) -> None:
        pass


ADAPTERS = {
    "flagstream": Flagstream,
    "flagstream-compiled": Flagstream,  # the same adapter; peers.py puts the compiled build on the path
    "optimizely": OptimizelySDK,
    "eppo": Eppo,
    "statsig": Statsig,
    "launchdarkly": LaunchDarkly,
    "growthbook": GrowthBook,
}


# -- the loopback server ------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    exposures = 0
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"{}") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/v2/download_config_specs"):
            self._reply(200, json.dumps(STATSIG_DCS).encode())
        elif self.path == "/count":
            self._reply(200, json.dumps({"exposures": _Handler.exposures}).encode())
        else:
            self._reply(404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/reset":
            with _Handler.lock:
                _Handler.exposures = 0
            self._reply(200)
            return
        if self.headers.get("Content-Encoding") == "gzip" or body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        count = 0
        if isinstance(payload, dict):  # Statsig: {"events": [...]}
            events = payload.get("events") or []
            count = sum(1 for e in events if e.get("eventName") == "statsig::config_exposure")
        elif isinstance(payload, list):  # LaunchDarkly: [{"kind": ...}, ...]
            count = sum(1 for e in payload if e.get("kind") == "feature")
        with _Handler.lock:
            _Handler.exposures += count
        self._reply(202 if isinstance(payload, list) else 200, b'{"success":true}')


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
