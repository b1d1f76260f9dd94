"""Minimal reproductions and readable reports of differential mismatches.

``minimize`` shrinks the calls before a failing one (greedy delta debugging)
while the same class of mismatch persists; ``format_report`` groups mismatches
into classes (field, method, differing path) with a count and one reproduction
each: the seed, the set-up, the calls, the datafile entities the call touches,
and both SDKs' values at the first differing path.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from harness import Mismatch, SdkFactory, compare_scripts, locate, run_script
from scriptgen import Call, Ctx, Forced, Script

__all__ = ["datafile_snippet", "format_mismatch", "format_report", "minimize"]


def minimize(first: SdkFactory, second: SdkFactory, script: Script, mismatch: Mismatch) -> tuple[Script, int]:
    """The shortest prefix we can find that still shows the same class of mismatch on its last call.

    Greedy delta debugging over the calls before the failing one: drop chunks of
    halving size while the mismatch persists. Returns the script and the index of
    the failing call within it.
    """
    if mismatch.index < 0:
        return script, mismatch.index
    target = script.calls[mismatch.index]
    kept = list(script.calls[: mismatch.index])

    def reproduces(prefix: list[Call]) -> bool:
        # a user-context call needs the call that created its handle
        if target.target != "client" and not any(c.bind == target.target for c in prefix):
            return False
        trial = script.with_calls((*prefix, target))
        _, found = compare_scripts(first, second, trial)
        return any(m.index == len(prefix) and m.signature == mismatch.signature for m in found)

    chunk = max(1, len(kept) // 2)
    budget = 400  # trials; each is two short client runs
    while chunk >= 1 and budget > 0:
        i = 0
        while i < len(kept) and budget > 0:
            candidate = kept[:i] + kept[i + chunk :]
            budget -= 1
            if reproduces(candidate):
                kept = candidate
            else:
                i += chunk
        chunk //= 2
    return script.with_calls((*kept, target)), len(kept)


def datafile_snippet(script: Script, call: Call, limit: int = 2500) -> str:
    """The parts of the datafile a call touches, compactly."""
    df = script.datafile
    strings = set()

    def walk(x: Any) -> None:
        if isinstance(x, str):
            strings.add(x)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, (Ctx, Forced)):
            walk(list(vars(x).values()))

    walk(list(call.args))
    exps = list(df.get("experiments", []))
    groups = df.get("groups", [])
    for g in groups:
        exps.extend(g["experiments"])
    rollouts = {r["id"]: r for r in df.get("rollouts", [])}
    picked: dict[str, Any] = {
        k: df[k] for k in ("version", "anonymizeIP", "botFiltering", "sendFlagDecisions", "region") if k in df
    }
    flags = [f for f in df.get("featureFlags", []) if f["key"] in strings or call.method == "decide_all"]
    if call.method in ("get_enabled_features",):
        flags = df.get("featureFlags", [])
    exp_ids = {i for f in flags for i in f["experimentIds"]}
    rel_exps = [e for e in exps if e["key"] in strings or e["id"] in exp_ids]
    rel_rollouts = [rollouts[f["rolloutId"]] for f in flags if f["rolloutId"] in rollouts]
    if flags:
        picked["featureFlags"] = flags
    if rel_exps:
        picked["experiments"] = rel_exps
        gids = [g for g in groups if any(e in g["experiments"] for e in rel_exps)]
        if gids:
            picked["groups(trafficAllocation)"] = [
                {"id": g["id"], "policy": g["policy"], "trafficAllocation": g["trafficAllocation"]}
                for g in gids
            ]
    if rel_rollouts:
        picked["rollouts"] = rel_rollouts
    events = [e for e in df.get("events", []) if e["key"] in strings]
    if events:
        picked["events"] = events
    text = json.dumps(picked, ensure_ascii=False, default=str)
    aud_ids = set(re.findall(r'"(\d{5,})"', text))
    auds = [a for a in df.get("audiences", []) + df.get("typedAudiences", []) if a["id"] in aud_ids]
    if auds:
        picked["audiences"] = auds
    for name in ("holdouts", "localHoldouts"):
        if df.get(name) and flags:
            picked[name] = df[name]
    text = json.dumps(picked, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars; regenerate with the seed)"


def _short(x: Any, limit: int = 1500) -> str:
    try:
        text = json.dumps(x, ensure_ascii=False, default=repr, sort_keys=True)
    except TypeError:  # keys of mixed types cannot be sorted
        text = json.dumps(x, ensure_ascii=False, default=repr)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates stay printable
    return text if len(text) <= limit else text[:limit] + "..."


def format_mismatch(
    first: SdkFactory, second: SdkFactory, script: Script, mismatch: Mismatch, shrink: bool = True
) -> str:
    small, index = minimize(first, second, script, mismatch) if shrink else (script, mismatch.index)
    a = run_script(first, small)
    b = run_script(second, small)
    lines = [
        f"[{mismatch.field}] {mismatch.call.method} seed={script.seed} call #{mismatch.index}: {mismatch.where}",
        f"  setup: default_decide_options={script.default_decide_options!r} profiles={_short(script.profiles, 400)}",
        "  calls:",
        *(f"    {c!r}" for c in small.calls),
        f"  datafile: {datafile_snippet(script, mismatch.call)}",
    ]
    if a.outcomes and b.outcomes and index >= 0:
        x, y = a.outcomes[index], b.outcomes[index]
        path, vx, vy = locate(getattr(x, mismatch.field), getattr(y, mismatch.field))
        lines.append(f"  differs at {mismatch.field}{'' if path == '.' else path}")
        lines.append(f"  {a.sdk}: {_short(vx)} {x.detail}")
        lines.append(f"  {b.sdk}: {_short(vy)} {y.detail}")
    else:
        lines.append(f"  {mismatch.names[0]}: {_short(mismatch.first)}")
        lines.append(f"  {mismatch.names[1]}: {_short(mismatch.second)}")
    return "\n".join(lines)


def format_report(
    first: SdkFactory,
    second: SdkFactory,
    scripts: dict[int, Script],
    mismatches: list[Mismatch],
    max_classes: int = 25,
    shrink: bool = True,
    shrink_seconds: float = 60.0,
) -> str:
    """Mismatches grouped by class, each with a count and one reproduction.

    Reproductions are minimized while ``shrink_seconds`` last, then shown as found.
    """
    deadline = time.monotonic() + shrink_seconds
    classes: dict[tuple[str, str, str], list[Mismatch]] = {}
    for m in mismatches:
        classes.setdefault(m.signature, []).append(m)
    ordered = sorted(classes.items(), key=lambda kv: -len(kv[1]))
    out = [f"{len(mismatches)} mismatching fields in {len(classes)} classes"]
    for sig, members in ordered[:max_classes]:
        out.append(f"\n=== {sig[0]} / {sig[1]} / {sig[2]}: {len(members)} occurrences")
        example = min(members, key=lambda m: (m.index, m.seed))
        small = shrink and time.monotonic() < deadline
        out.append(format_mismatch(first, second, scripts[example.seed], example, shrink=small))
    if len(ordered) > max_classes:
        out.append(f"\n... and {len(ordered) - max_classes} more classes")
    return "\n".join(out)
