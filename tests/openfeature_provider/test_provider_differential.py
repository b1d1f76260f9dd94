"""The provider decides exactly as ``user.decide``: generated datafiles, generated users.

For every seed, the differential suite's generators (tests/differential/gen.py
for datafiles, scriptgen.py for users and attributes) feed two clients on the
same datafile: one behind OpenFeature's client API, one called with
``user.decide``. For each user and flag the OpenFeature side asks the boolean
(enabled), the object of the bare flag (all variables) and one variable by its
own type; the decide side decides the same number of times. Values, variants,
rule and variation ids (against the DECISION notification), and every
impression body sent (uuids and timestamps aside) must be equal.

Users with an empty id are left out: OpenFeature reports TARGETING_KEY_MISSING
for them where ``create_user_context("")`` decides (docs/openfeature.md).
"""

from __future__ import annotations

import collections
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from of_helpers import set_provider_and_wait
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

import flagstream
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.notifications import NotificationTypes
from flagstream.openfeature import FlagstreamProvider
from flagstream.testing import CapturingEventDispatcher

sys.path.insert(0, str(Path(__file__).parents[1] / "differential"))
import gen
import harness
import scriptgen

SEEDS = int(os.environ.get("FLAGSTREAM_OF_DIFF_SEEDS", "40"))
USERS_PER_SEED = 12
KNOBS = gen.Knobs(wrong_types=False)  # OpenFeature contexts are always a key and a mapping
GETTERS = {
    "boolean": ("get_boolean_details", False),
    "string": ("get_string_details", ""),
    "integer": ("get_integer_details", 0),
    "double": ("get_float_details", 0.0),
    "json": ("get_object_details", {}),
}


def normalized_bodies(capture: CapturingEventDispatcher) -> list[Any]:
    bodies = []
    for body in capture.bodies():
        payload = json.loads(body)
        for visitor in payload["visitors"]:
            for snapshot in visitor["snapshots"]:
                for event in snapshot["events"]:
                    event.pop("uuid")
                    event.pop("timestamp")
        bodies.append(payload)
    return bodies


def run_seed(seed: int, reasons: collections.Counter[str]) -> tuple[int, int]:
    datafile = gen.generate_datafile(seed, knobs=KNOBS)
    text = gen.datafile_json(datafile)
    rng = random.Random(seed)
    inputs = scriptgen._InputGen(rng, datafile, KNOBS)
    of_capture, decide_capture = CapturingEventDispatcher(), CapturingEventDispatcher()
    logger = harness.SwallowLogger()
    of_side = flagstream.Optimizely(text, logger=logger, event_processor=ForwardingEventProcessor(of_capture))
    decide_side = flagstream.Optimizely(
        text, logger=logger, event_processor=ForwardingEventProcessor(decide_capture)
    )
    notified: list[dict[str, Any]] = []
    decide_side.notification_center.add_notification_listener(
        NotificationTypes.DECISION, lambda _type, _user, _attrs, info: notified.append(info)
    )
    compared = 0
    try:
        if of_side.config_manager.get_config() is None:
            return 0, 0  # a datafile flagstream rejects: nothing to decide
        set_provider_and_wait(FlagstreamProvider(of_side))
        client = api.get_client()
        flags = {f["key"]: f for f in datafile.get("featureFlags", [])}
        for _ in range(USERS_PER_SEED):
            user_id = inputs.user_id()
            if user_id == "":
                continue
            attributes = inputs.attributes() or {}
            context = EvaluationContext(user_id, attributes)
            for flag_key, flag in flags.items():
                user = decide_side.create_user_context(user_id, attributes)
                assert user is not None
                where = f"seed {seed}, user {user_id!r}, flag {flag_key!r}"

                details = client.get_boolean_details(flag_key, not False, context)
                decision = user.decide(flag_key)
                info = notified[-1]
                assert details.error_code is None, (where, details.error_message)
                assert details.value is decision.enabled, where
                assert details.variant == decision.variation_key, where
                meta = details.flag_metadata
                assert meta.get("rule_key") == decision.rule_key, where
                assert meta.get("rule_id") == info["experiment_id"], where
                assert meta.get("variation_id") == info["variation_id"], where
                assert details.reason != Reason.ERROR, where
                assert details.reason == Reason.DEFAULT or decision.variation_key is not None, where
                reasons[str(details.reason)] += 1

                everything = client.get_object_details(flag_key, {}, context)
                again = user.decide(flag_key)
                assert harness.first_diff(everything.value, again.variables) is None, where

                variables = flag.get("variables") or []
                if variables:
                    variable = rng.choice(variables)
                    kind = "json" if variable.get("subType") == "json" else variable["type"]
                    getter, default = GETTERS[kind]
                    one = getattr(client, getter)(f"{flag_key}.{variable['key']}", default, context)
                    expected = user.decide(flag_key).variables[variable["key"]]
                    if expected is None or (kind == "json" and not isinstance(expected, (dict, list))):
                        assert one.error_code is not None, where  # PARSE_ERROR / TYPE_MISMATCH
                    else:
                        assert one.error_code is None, (where, one.error_message)
                        value = float(expected) if kind == "double" else expected
                        assert harness.first_diff(one.value, value) is None, where
                compared += 1
        sent = normalized_bodies(of_capture)
        assert harness.first_diff(sent, normalized_bodies(decide_capture)) is None, f"seed {seed}"
        return compared, len(sent)
    finally:
        api.shutdown()
        decide_side.close()


@pytest.mark.parametrize("block", range(4))
def test_openfeature_evaluations_decide_and_send_impressions_as_user_decide(block):
    seeds = range(block * SEEDS // 4, (block + 1) * SEEDS // 4)
    reasons: collections.Counter[str] = collections.Counter()
    compared, impressions = map(sum, zip(*(run_seed(seed, reasons) for seed in seeds), strict=True))
    # Not vacuous: users x flags compared, impressions compared, every reason reached.
    assert compared >= 20 * len(seeds)
    assert impressions >= 5 * len(seeds)
    assert {"SPLIT", "TARGETING_MATCH", "DEFAULT"} <= set(reasons), reasons
