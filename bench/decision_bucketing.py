"""Decision micro-benchmarks: flagstream vs optimizely-sdk 5.7, side by side in one run.

    .venv/bin/python bench/decision_bucketing.py [--quick]

Per call p50 (and p99) of: bucketing one user, evaluating an experiment's
audiences, a whole ``get_variation_for_feature`` (no user profile service,
no reasons) and the same with INCLUDE_REASONS. Each sample times a batch of
calls; flagstream and optimizely-sdk samples are interleaved so machine noise
hits both. Ratios are optimizely / flagstream (higher is better for us).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

from optimizely import bucketer as opt_bucketer
from optimizely import decision_service as opt_ds
from optimizely import logger as opt_logger
from optimizely import optimizely_user_context as opt_uc
from optimizely import project_config as opt_pc
from optimizely.error_handler import NoOpErrorHandler
from optimizely.helpers import audience as opt_audience
from optimizely.helpers import enums as opt_enums

from flagstream.config.project_config import ProjectConfig
from flagstream.decision import DecisionService, SimpleUser
from flagstream.decision._call import Call
from flagstream.decision.audiences import user_meets_audiences
from flagstream.decision.bucketing import find_bucket


def _variation(vid: str, key: str) -> dict[str, object]:
    return {"id": vid, "key": key, "featureEnabled": True, "variables": []}


def _rule(eid: str, key: str, audiences: list[str], end: int, variation: str) -> dict[str, object]:
    return {
        "id": eid,
        "key": key,
        "status": "Running",
        "layerId": "9" + eid,
        "audienceIds": audiences,
        "forcedVariations": {},
        "variations": [_variation(variation, "v" + variation)],
        "trafficAllocation": [{"entityId": variation, "endOfRange": end}],
    }


DATAFILE = {
    "version": "4",
    "accountId": "1",
    "projectId": "2",
    "revision": "3",
    "anonymizeIP": False,
    "botFiltering": False,
    "sendFlagDecisions": True,
    "attributes": [
        {"id": "100", "key": "country"},
        {"id": "101", "key": "age"},
        {"id": "102", "key": "plan"},
    ],
    "audiences": [
        {
            "id": "500",
            "name": "legacy",
            "conditions": json.dumps(
                ["and", ["or", ["or", {"name": "country", "type": "custom_attribute", "value": "us"}]]]
            ),
        }
    ],
    "typedAudiences": [
        {
            "id": "501",
            "name": "adults in us",
            "conditions": [
                "and",
                [
                    "or",
                    ["or", {"name": "country", "type": "custom_attribute", "match": "exact", "value": "us"}],
                ],
                ["or", ["or", {"name": "age", "type": "custom_attribute", "match": "ge", "value": 18}]],
            ],
        },
        {
            "id": "502",
            "name": "pro",
            "conditions": [
                "or",
                {"name": "plan", "type": "custom_attribute", "match": "substring", "value": "pro"},
            ],
        },
    ],
    "experiments": [
        {
            "id": "20",
            "key": "checkout_test",
            "status": "Running",
            "layerId": "21",
            "audienceIds": ["501"],
            "audienceConditions": ["or", "501", "502"],
            "forcedVariations": {},
            "variations": [_variation("22", "control"), _variation("23", "treatment")],
            "trafficAllocation": [
                {"entityId": "22", "endOfRange": 2500},
                {"entityId": "23", "endOfRange": 5000},
            ],
        }
    ],
    "groups": [],
    "rollouts": [
        {
            "id": "30",
            "experiments": [
                _rule("31", "beta_users", ["502"], 5000, "32"),
                _rule("33", "us_users", ["500"], 8000, "34"),
                _rule("35", "everyone_else", [], 10000, "36"),
            ],
        }
    ],
    "featureFlags": [
        {"id": "40", "key": "checkout", "experimentIds": ["20"], "rolloutId": "30", "variables": []}
    ],
    "events": [],
}
USERS = [
    (f"user-{i}", {"country": ["us", "fr", "de"][i % 3], "age": 10 + i % 50, "plan": ["free", "pro"][i % 2]})
    for i in range(512)
]


def _sample(fn: Callable[[int], None], batch: int) -> float:
    start = time.perf_counter_ns()
    fn(batch)
    return (time.perf_counter_ns() - start) / batch / 1000.0


def measure(
    ours: Callable[[int], None], theirs: Callable[[int], None], samples: int, batch: int
) -> tuple[list[float], list[float]]:
    ours(batch)
    theirs(batch)  # warm up both
    a: list[float] = []
    b: list[float] = []
    for _ in range(samples):
        a.append(_sample(ours, batch))
        b.append(_sample(theirs, batch))
    return a, b


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    quick = "--quick" in sys.argv
    samples, batch = (60, 50) if quick else (400, 100)
    text = json.dumps(DATAFILE)
    noop = opt_logger.NoOpLogger()
    opt_config = opt_pc.ProjectConfig(text, noop, NoOpErrorHandler())
    opt_service = opt_ds.DecisionService(noop, None, None)  # type: ignore[arg-type]
    config = ProjectConfig.from_datafile(text)
    service = DecisionService()
    opt_users = [opt_uc.OptimizelyUserContext(None, noop, uid, attrs, identify=False) for uid, attrs in USERS]  # type: ignore[arg-type]
    users = [SimpleUser(uid, attrs) for uid, attrs in USERS]
    n = len(USERS)

    opt_bucket = opt_bucketer.Bucketer()
    opt_alloc = opt_config.get_experiment_from_key("checkout_test").trafficAllocation
    experiment = config.experiment_key_map["checkout_test"]
    plan = service.plan(config)
    ep = plan.entity(experiment)

    def ours_bucket(k: int) -> None:
        alloc = ep.allocation
        for i in range(k):
            find_bucket(USERS[i % n][0], "20", alloc)

    def theirs_bucket(k: int) -> None:
        for i in range(k):
            opt_bucket.find_bucket(opt_config, USERS[i % n][0], "20", opt_alloc)

    opt_exp = opt_config.get_experiment_from_key("checkout_test")
    opt_conditions = opt_exp.get_audience_conditions_or_ids()
    logs = opt_enums.ExperimentAudienceEvaluationLogs

    def ours_audience(k: int) -> None:
        for i in range(k):
            user = users[i % n]
            user_meets_audiences(
                ep.audiences, user.attributes, Call(service._logger, None, user), "checkout_test", rule=False
            )

    def theirs_audience(k: int) -> None:
        for i in range(k):
            opt_audience.does_user_meet_audience_conditions(
                opt_config, opt_conditions, logs, "checkout_test", opt_users[i % n], noop
            )

    flag = config.feature_key_map["checkout"]
    opt_flag = opt_config.feature_key_map["checkout"]

    def ours_flag(k: int) -> None:
        for i in range(k):
            service.get_variation_for_feature(config, flag, users[i % n])

    def theirs_flag(k: int) -> None:
        for i in range(k):
            opt_service.get_variation_for_feature(opt_config, opt_flag, opt_users[i % n])

    reasons = ["INCLUDE_REASONS"]

    def ours_flag_reasons(k: int) -> None:
        for i in range(k):
            service.get_variation_for_feature(config, flag, users[i % n], reasons)

    def theirs_flag_reasons(k: int) -> None:
        for i in range(k):
            opt_service.get_variation_for_feature(opt_config, opt_flag, opt_users[i % n], reasons)

    print(
        f"python {platform.python_version()} on {platform.machine()} {platform.system()}; "
        f"{samples} samples x {batch} calls, p50/p99 per call in µs"
    )
    print(f"{'operation':<38}{'flagstream':>18}{'optimizely-sdk':>20}{'ratio p50':>12}")
    for name, ours, theirs in (
        ("bucket (hash + allocation)", ours_bucket, theirs_bucket),
        ("audience evaluation (2 audiences)", ours_audience, theirs_audience),
        ("get_variation_for_feature", ours_flag, theirs_flag),
        ("get_variation_for_feature + reasons", ours_flag_reasons, theirs_flag_reasons),
    ):
        a, b = measure(ours, theirs, samples, batch)
        pa, pb = statistics.median(a), statistics.median(b)
        print(
            f"{name:<38}{pa:>9.2f} /{_pct(a, 0.99):>7.2f}{pb:>11.2f} /{_pct(b, 0.99):>7.2f}{pb / pa:>11.1f}x"
        )


if __name__ == "__main__":
    main()
