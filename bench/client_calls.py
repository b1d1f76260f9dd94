"""Caller cost per call: flagstream vs optimizely-sdk, side by side in one process.

Each SDK runs with its default event processor over a dispatcher that drops
requests (so the network is not measured, only what the caller pays, including
the GIL contention of each SDK's own worker). The two SDKs are measured in
alternating rounds so machine noise hits both alike; the table shows p50/p99
over all rounds and the ratio of the medians.

    .venv/bin/python bench/client_calls.py [--rounds 10] [--calls 2000]
"""

from __future__ import annotations

import argparse
import logging
import sys

from _common import BASIC_DATAFILE, machine_info, percentile, sample, table

import flagstream


class DropDispatcher:
    def dispatch_event(self, log_event: object) -> None:
        pass


def _flagstream():
    client = flagstream.Optimizely(BASIC_DATAFILE, event_dispatcher=DropDispatcher())
    return client, flagstream


def _optimizely():
    from optimizely import optimizely  # test-only dependency, imported only here

    logging.getLogger("optimizely").setLevel(logging.CRITICAL)
    client = optimizely.Optimizely(BASIC_DATAFILE, event_dispatcher=DropDispatcher())
    return client, None


def operations(client) -> dict[str, object]:
    users = [client.create_user_context(f"user-{i}", {"country": "de", "age": 30}) for i in range(64)]
    attrs = {"age": 30}
    return {
        "decide (impression)": lambda i: users[i & 63].decide("banner"),
        "decide (no event)": lambda i: users[i & 63].decide("banner", ["DISABLE_DECISION_EVENT"]),
        "activate": lambda i: client.activate("checkout_test", f"user-{i & 1023}", attrs),
        "track": lambda i: client.track("purchase", f"user-{i & 1023}", attrs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    ours, _ = _flagstream()
    theirs, _ = _optimizely()
    our_ops, their_ops = operations(ours), operations(theirs)
    results: dict[str, dict[str, list[float]]] = {
        name: {"flagstream": [], "optimizely": []} for name in our_ops
    }
    for _ in range(args.rounds):
        for name in our_ops:
            results[name]["optimizely"] += sample(their_ops[name], args.calls)
            results[name]["flagstream"] += sample(our_ops[name], args.calls)
    ours.close()
    theirs.close()

    rows = []
    for name, by_sdk in results.items():
        f50, o50 = percentile(by_sdk["flagstream"], 0.5), percentile(by_sdk["optimizely"], 0.5)
        rows.append(
            [
                name,
                f"{o50:.1f}",
                f"{percentile(by_sdk['optimizely'], 0.99):.1f}",
                f"{f50:.1f}",
                f"{percentile(by_sdk['flagstream'], 0.99):.1f}",
                f"{o50 / f50:.1f}x",
            ]
        )
    print(f"caller cost per call, µs ({args.rounds} rounds x {args.calls} calls; {machine_info()})")
    print(f"flagstream {flagstream.__version__}, optimizely-sdk 5.7.0")
    print(
        table(
            [
                "operation",
                "optimizely p50",
                "optimizely p99",
                "flagstream p50",
                "flagstream p99",
                "speed-up p50",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
