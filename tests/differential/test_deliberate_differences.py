"""Differences the differential test found that docs/compatibility.md does not list (yet).

The accepted ones have their rows and tests there (tests/client, tests/config).
These pin both sides of the rest, so the lead can decide each one: what
optimizely-sdk does (an oracle upgrade that changes it is noticed) and what
flagstream does now. ``xfail(strict=True)`` marks a flagstream bug: the test
states optimizely-sdk's behaviour and turns red once flagstream matches it,
so the marker is removed with the fix. Clients are built exactly as the
differential harness builds them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import harness
import scriptgen

pytestmark = pytest.mark.skipif(
    harness.flagstream_available() is not None, reason=str(harness.flagstream_available())
)

DATAFILE: dict[str, Any] = {
    "version": "4",
    "accountId": "1001",
    "projectId": "2002",
    "revision": "7",
    "experiments": [],
    "groups": [],
    "audiences": [],
    "attributes": [],
    "events": [{"id": "10", "key": "purchase", "experimentIds": []}],
    "featureFlags": [
        {"id": "20", "key": "off_flag", "rolloutId": "30", "experimentIds": [], "variables": []}
    ],
    "rollouts": [
        {
            "id": "30",
            "experiments": [
                {
                    "id": "40",
                    "key": "everyone_else",
                    "status": "Running",
                    "layerId": "30",
                    "audienceIds": [],
                    "forcedVariations": {},
                    "variations": [{"id": "50", "key": "off", "featureEnabled": False, "variables": []}],
                    "trafficAllocation": [{"entityId": "50", "endOfRange": 10000}],
                }
            ],
        }
    ],
}


def _run(
    calls: list[scriptgen.Call], default_options: Any = None, datafile: Any = None
) -> tuple[harness.Run, harness.Run]:
    raw = datafile if isinstance(datafile, str) else None
    script = scriptgen.Script(
        0, datafile if isinstance(datafile, dict) else DATAFILE, tuple(calls), default_options, None
    )
    if raw is not None:
        script = scriptgen.Script(0, DATAFILE, tuple(calls), default_options, None, raw_datafile=raw)
    return harness.run_script(harness.OPTIMIZELY, script), harness.run_script(harness.FLAGSTREAM, script)


def _user(*more: scriptgen.Call) -> list[scriptgen.Call]:
    return [scriptgen.Call("client", "create_user_context", ("user-1",), bind="u0"), *more]


def test_decide_for_keys_skips_an_unhashable_key_where_optimizely_raises() -> None:
    opt, fs = _run(_user(scriptgen.Call("u0", "decide_for_keys", ([["k"], "off_flag"],))))
    assert opt.outcomes[1].raised == "TypeError"
    assert fs.outcomes[1].raised is None
    assert fs.outcomes[1].value["order"] == ["off_flag"]


SURROGATE = "bad\ud800id"  # a lone surrogate: not encodable as UTF-8


def test_a_user_id_with_a_lone_surrogate_gets_the_default_decision_where_optimizely_raises() -> None:
    calls = [
        scriptgen.Call("client", "create_user_context", (SURROGATE,), bind="u0"),
        scriptgen.Call("u0", "decide", ("off_flag",)),
    ]
    opt, fs = _run(calls)
    assert opt.outcomes[1].raised == "UnicodeEncodeError"  # MurmurHash of the bucketing id
    assert fs.outcomes[1].raised is None


def test_a_conversion_for_a_user_id_with_a_lone_surrogate_is_sent() -> None:
    opt, fs = _run([scriptgen.Call("client", "track", ("purchase", SURROGATE))])
    assert len(opt.outcomes[0].events) == 1  # its JSON escapes the surrogate as \\ud800
    assert harness.same(opt.outcomes[0].events, fs.outcomes[0].events)


def test_a_json_variable_keeps_an_integer_beyond_64_bits_exact() -> None:
    df = json.loads(json.dumps(DATAFILE))
    df["featureFlags"][0]["variables"] = [
        {
            "id": "70",
            "key": "limits",
            "type": "json",
            "defaultValue": '{"huge": 123456789012345678901234567890}',
        }
    ]
    opt, fs = _run(_user(scriptgen.Call("u0", "decide", ("off_flag",))), datafile=df)
    assert opt.outcomes[1].value["variables"] == {"limits": {"huge": 123456789012345678901234567890}}
    assert harness.same(opt.outcomes[1].value, fs.outcomes[1].value)


def test_skipped_validation_with_a_string_end_of_range_decides_where_optimizely_raises() -> None:
    df = json.loads(json.dumps(DATAFILE))
    df["rollouts"][0]["experiments"][0]["trafficAllocation"][0]["endOfRange"] = "10000"
    script = scriptgen.Script(
        0,
        df,
        tuple(_user(scriptgen.Call("u0", "decide", ("off_flag",)))),
        skip_json_validation=True,  # optimizely-sdk's schema would refuse the file; nothing else checks the type
    )
    opt, fs = harness.run_script(harness.OPTIMIZELY, script), harness.run_script(harness.FLAGSTREAM, script)
    assert opt.outcomes[1].raised == "TypeError"  # '<' between int and str while bucketing
    assert fs.outcomes[1].raised is None
    assert fs.outcomes[1].value["variation_key"] is None  # the slice is unusable: no variation
