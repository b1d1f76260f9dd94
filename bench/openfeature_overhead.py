"""OpenFeature's get_boolean_value through FlagstreamProvider against user.decide, same flag, same users.

Rows, each with its impression queued for the default batch processor (over a
dispatcher that drops requests): ``user.decide`` on a user context made once;
``create_user_context + decide`` (what any per-call context costs);
``provider.resolve_boolean_details`` (the provider alone); and OpenFeature's
``client.get_boolean_value`` (the provider plus the SDK's context merging and
hook machinery), beside the same call on OpenFeature's NoOpProvider (what the SDK
costs with no provider work at all). Alternating rounds; medians over all rounds,
ratio to decide.

    .venv/bin/python bench/openfeature_overhead.py [--rounds 10] [--calls 4000]
"""

from __future__ import annotations

import argparse
import sys

from _common import BASIC_DATAFILE, machine_info, median, percentile, sample, table
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider.no_op_provider import NoOpProvider

import flagstream
from flagstream.openfeature import FlagstreamProvider


class DropDispatcher:
    def dispatch_event(self, log_event: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()

    client = flagstream.Optimizely(BASIC_DATAFILE, event_dispatcher=DropDispatcher())
    provider = FlagstreamProvider(client)
    getattr(api, "set_provider_and_wait", api.set_provider)(provider)
    of_client = api.get_client()
    api.set_provider(NoOpProvider(), "noop")  # the SDK's own floor: a provider that does nothing
    noop_client = api.get_client("noop")
    attributes = {"country": "de", "age": 30}
    users = [client.create_user_context(f"user-{i}", attributes) for i in range(64)]
    contexts = [EvaluationContext(f"user-{i}", attributes) for i in range(64)]
    operations = {
        "user.decide": lambda i: users[i & 63].decide("banner"),
        "create_user_context + decide": lambda i: client.create_user_context(
            f"user-{i & 63}", attributes
        ).decide("banner"),
        "provider.resolve_boolean_details": lambda i: provider.resolve_boolean_details(
            "banner", False, contexts[i & 63]
        ),
        "OpenFeature get_boolean_value": lambda i: of_client.get_boolean_value(
            "banner", False, contexts[i & 63]
        ),
        "  the same on NoOpProvider (SDK floor)": lambda i: noop_client.get_boolean_value(
            "banner", False, contexts[i & 63]
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(args.rounds):
        for name, op in operations.items():
            samples[name].extend(sample(op, args.calls))
            client.flush(5)
    base = median(samples["user.decide"])
    rows = [
        [name, f"{median(s):.2f}", f"{percentile(s, 0.99):.2f}", f"{median(s) / base:.2f}x"]
        for name, s in samples.items()
    ]
    print(machine_info())
    print(f"openfeature-sdk {__import__('importlib.metadata').metadata.version('openfeature-sdk')}")
    print(table(["call (flag banner, impression sent)", "p50 µs", "p99 µs", "vs decide"], rows))
    api.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
