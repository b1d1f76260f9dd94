"""Run the differential comparison wider than the test does, from the command line.

    .venv/bin/python tests/differential/explore.py --seeds 0:300
    .venv/bin/python tests/differential/explore.py --seeds 0:60 --knob huge_json_numbers --knob nasty_user_ids
    .venv/bin/python tests/differential/explore.py --seeds 7:8 --self     # optimizely-sdk against itself

Prints the number of compared calls, the documented differences it tolerated
(by their row in docs/compatibility.md), the candidates, and a report with one
minimal reproduction per remaining class of mismatch.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import gen
import harness
import report
import scriptgen
import test_differential


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0:48", help="first:last (exclusive)")
    parser.add_argument("--calls", type=int, default=220, help="calls per script")
    parser.add_argument("--knob", action="append", default=[], help="a gen.Knobs field to switch on")
    parser.add_argument("--self", action="store_true", help="compare optimizely-sdk with itself")
    parser.add_argument("--classes", type=int, default=12, help="classes to reproduce")
    args = parser.parse_args(argv)

    first, last = (int(x) for x in args.seeds.split(":"))
    knobs = dataclasses.replace(gen.DEFAULT_KNOBS, **dict.fromkeys(args.knob, True))
    second = harness.OPTIMIZELY if args.self else harness.FLAGSTREAM
    tolerated: collections.Counter[str] = collections.Counter()
    candidates: collections.Counter[str] = collections.Counter()
    rest: list[harness.Mismatch] = []
    scripts: dict[int, scriptgen.Script] = {}
    compared = 0
    started = time.monotonic()
    for seed in range(first, last):
        script = scriptgen.generate_script(seed, args.calls, knobs=knobs)
        scripts[seed] = script
        n, found = harness.compare_scripts(harness.OPTIMIZELY, second, script)
        compared += n
        for m in found:
            if name := test_differential._known(m, script):
                tolerated[name] += 1
            elif name := test_differential._known(m, script, test_differential.CANDIDATE_DIFFERENCES):
                candidates[name] += 1
            else:
                rest.append(m)
    print(f"{compared} calls compared in {time.monotonic() - started:.0f} s; {len(rest)} unexplained fields")
    for title, counter in (("documented", tolerated), ("candidates", candidates)):
        for name, n in counter.most_common():
            print(f"  {title}: {n:5d}  {name}")
    if rest:
        print(report.format_report(harness.OPTIMIZELY, second, scripts, rest, max_classes=args.classes))
    return 1 if rest else 0


if __name__ == "__main__":
    raise SystemExit(main())
