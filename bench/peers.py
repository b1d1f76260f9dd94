"""Flag SDKs side by side: one flag, a 50/50 experiment behind one audience, exposures on.

Each SDK runs in its own process on the same workload and is timed call by
call: p50/p99/p99.9 and calls/s, for a new user on every call and for one
repeated user. Every SDK keeps its exposure path on, and the exposures it
produced are counted, so none is measured doing less than it claims:

  flagstream       ``user.decide("exp")``; default BatchEventProcessor over an
                   in-process dispatcher that counts the visitors it is sent
  optimizely-sdk   ``user.decide("exp")``; its BatchEventProcessor, same counting dispatcher
  eppo             ``get_string_assignment``; its ``AssignmentLogger`` (a list) is the sink
  statsig          ``get_experiment``; specs and ``log_event`` from a loopback server
                   in another process, which counts the exposures it receives
  launchdarkly     ``variation``; a file data source, its default event processor
                   posting to that loopback server
  growthbook       a ``GrowthBook`` per call (its per-request pattern) and
                   ``get_feature_value``; ``on_experiment_viewed`` is the sink

The peers are benchmark-only dependencies, installed in their own venv (never
in the project's): ``python bench/peers.py --setup`` makes ``bench/.venv`` with
flagstream, optimizely-sdk and each peer that installs (one line for each that
does not). Then:

    bench/.venv/bin/python bench/peers.py [--calls 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import machine_info, percentile, table  # noqa: E402

PEER_VENV = HERE / ".venv"
PEER_PACKAGES = {  # the `bench` extra of pyproject.toml names the same
    "optimizely": "optimizely-sdk==5.7.0",
    "eppo": "eppo-server-sdk>=4.4",
    "statsig": "statsig-python-core>=0.20",
    "launchdarkly": "launchdarkly-server-sdk>=9.16",
    "growthbook": "growthbook>=2.2",
}
SDKS = ["flagstream", "flagstream-compiled", "optimizely", "eppo", "statsig", "launchdarkly", "growthbook"]
# flagstream's two builds: the pure-Python reference (forced with FLAGSTREAM_PURE_PYTHON), and the
# mypyc build that `make compiled` installs in .build/compiled, put first on the child's path.
COMPILED_BUILD = ROOT / ".build" / "compiled"
CHILD_ENV = {
    "flagstream": {"FLAGSTREAM_PURE_PYTHON": "1"},
    "flagstream-compiled": {"PYTHONPATH": str(COMPILED_BUILD)},
}
ATTRIBUTES = {"country": "US"}


# -- the parent: one child process per SDK and mode -----------------------------------


def setup() -> int:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(PEER_VENV)])
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.check_call([*pip, "--upgrade", "pip"])
    # The editable install is the pure reference; the compiled build comes from `make compiled`.
    subprocess.check_call([*pip, "-e", str(ROOT)], env={**os.environ, "FLAGSTREAM_BUILD": "pure"})
    for sdk, requirement in PEER_PACKAGES.items():
        if subprocess.call([*pip, requirement], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            print(f"skip {sdk}: `pip install {requirement}` failed in {PEER_VENV}")
    return 0


def run_child(sdk: str, mode: str, calls: int, python: str) -> dict | str:
    if sdk == "flagstream-compiled" and not (COMPILED_BUILD / ".built").exists():
        return f"no compiled build in {COMPILED_BUILD}; run `make compiled`"
    command = [python, str(Path(__file__)), "--child", sdk, "--mode", mode, "--calls", str(calls)]
    env = {**os.environ, **CHILD_ENV.get(sdk, {})}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)
    except subprocess.TimeoutExpired:
        return "timed out after 300 s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed ({last[:160]})"
    result = json.loads(lines[-1])
    return result.get("skip") or result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help=f"make {PEER_VENV} with the peers, then stop")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs per SDK and mode; medians are shown")
    parser.add_argument("--sdks", default=",".join(SDKS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="unique", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        return setup()
    if args.child:
        return child(args.child, args.mode, args.calls)

    sdks = args.sdks.split(",")
    print(f"{args.calls} calls per run, {args.rounds} runs per SDK and mode, each in its own process")
    print(f"start: {machine_info()}")
    results: dict[tuple[str, str], list[dict]] = {}
    skipped: dict[str, str] = {}
    for _ in range(args.rounds):  # rounds outermost, so a noisy minute hits every SDK alike
        for mode in ("unique", "repeated"):
            for sdk in sdks:
                if sdk in skipped:
                    continue
                result = run_child(sdk, mode, args.calls, sys.executable)
                if isinstance(result, str):
                    skipped[sdk] = result
                    print(f"skip {sdk}: {result}")
                    continue
                results.setdefault((sdk, mode), []).append(result)
    print(f"end: {machine_info()}")
    rows = []
    base = {mode: _median(results, "flagstream", mode, "p50") for mode in ("unique", "repeated")}
    for mode in ("unique", "repeated"):
        for sdk in sdks:
            runs = results.get((sdk, mode))
            if not runs:
                continue
            p50 = _median(results, sdk, mode, "p50")
            rows.append(
                [
                    f"{sdk} {runs[0]['version']}",
                    "new user each call" if mode == "unique" else "one user",
                    f"{p50:.1f}",
                    f"{_median(results, sdk, mode, 'p99'):.1f}",
                    f"{_median(results, sdk, mode, 'p999'):.0f}",
                    f"{_median(results, sdk, mode, 'rate'):,.0f}",
                    f"{_median(results, sdk, mode, 'exposures'):,.0f}",
                    f"{p50 / base[mode]:.2f}" if base[mode] else "-",
                ]
            )
    headers = ["SDK", "user", "p50 µs", "p99 µs", "p99.9 µs", "calls/s", "exposures", "p50 / flagstream"]
    print(table(headers, rows))
    print("(medians over runs; exposures: those the SDK delivered or logged for the run's calls)")
    return 0


def _median(results: dict, sdk: str, mode: str, key: str) -> float:
    values = sorted(run[key] for run in results.get((sdk, mode), []))
    return values[len(values) // 2] if values else 0.0


# -- the child: one SDK, one mode -------------------------------------------------------


def child(sdk: str, mode: str, calls: int) -> int:
    import peers_sdks  # the SDK adapters, imported only in the child

    try:
        adapter = peers_sdks.ADAPTERS[sdk]()
    except ImportError as exc:
        print(json.dumps({"skip": f"not installed ({exc.name}); run `python bench/peers.py --setup`"}))
        return 0
    try:
        users = [f"user-{i}" for i in range(calls)] if mode == "unique" else ["user-1"] * calls
        call = adapter.call
        for i in range(1000):  # warm up on other users
            call(f"warm-{i}")
        adapter.reset_count()
        clock = time.perf_counter_ns
        durations = [0.0] * calls
        started = clock()
        for i, user in enumerate(users):
            start = clock()
            call(user)
            durations[i] = (clock() - start) / 1000
        elapsed = (clock() - started) / 1e9
        exposures = adapter.exposures()
    finally:
        adapter.close()
    print(
        json.dumps(
            {
                "version": adapter.version,
                "p50": percentile(durations, 0.5),
                "p99": percentile(durations, 0.99),
                "p999": percentile(durations, 0.999),
                "rate": calls / elapsed,
                "exposures": exposures,
                "pid": os.getpid(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
