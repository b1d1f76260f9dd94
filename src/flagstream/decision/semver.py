"""Semantic version comparison for the ``semver_*`` match types, as optimizely-sdk 5.7 compares.

A version is up to three dot-separated numeric parts, optionally followed by
a pre-release (``-beta.1``) or build (``+001``) suffix, whichever comes
first; no spaces. Only as many parts as the target has are compared, so
``"1.2.3"`` equals a target of ``"1.2"``; a pre-release sorts before its
release; suffixes compare as strings.

>>> compare_versions("1.2", "1.2.9")
0
>>> compare_versions("1.0.0", "1.0.0-beta")
-1
"""

from __future__ import annotations

__all__ = ["compare_versions", "split_version"]


def _is_pre_release(version: str) -> bool:
    dash = version.find("-")
    if dash < 0:
        return False
    plus = version.find("+")
    return plus < 0 or dash < plus


def _is_build(version: str) -> bool:
    plus = version.find("+")
    if plus < 0:
        return False
    dash = version.find("-")
    return dash < 0 or plus < dash


def split_version(version: str) -> list[str] | None:
    """Split a version into its dotted numeric parts plus at most one suffix; None if invalid.

    ``"1.2.3-beta.1"`` -> ``["1", "2", "3", "beta.1"]``; at most three numeric
    parts, each all digits; no spaces anywhere.
    """
    if " " in version:
        return None
    prefix = version
    suffix: list[str] = []
    if _is_pre_release(version):
        prefix, *suffix = version.split("-", 1)
    elif _is_build(version):
        prefix, *suffix = version.split("+", 1)
    if prefix.count(".") > 2:
        return None
    parts = prefix.split(".")
    for part in parts:
        if not part.isdigit():
            return None
    return parts + suffix


def compare_versions(target: str, user: str) -> int | None:
    """Compare ``user`` with ``target``: 0 equal, 1 greater, -1 less, None if either is invalid.

    Only as many parts as the target has are compared, so ``"1.2.3"`` equals a
    target of ``"1.2"``. A pre-release sorts before its release.
    """
    target_parts = split_version(target)
    if target_parts is None:
        return None
    user_parts = split_version(user)
    if user_parts is None:
        return None
    pre_target = _is_pre_release(target)
    pre_user = _is_pre_release(user)
    build_target = _is_build(target)
    for index, target_part in enumerate(target_parts):
        if index >= len(user_parts):
            return 1 if pre_target or build_target else -1
        user_part = user_parts[index]
        if not user_part.isdigit():
            if user_part < target_part:
                return 1 if pre_target and not pre_user else -1
            if user_part > target_part:
                return -1 if not pre_target and pre_user else 1
            continue
        try:
            user_number = int(user_part)
            target_number = int(target_part)
        except ValueError:
            # A digit-only user suffix against a word target suffix ("1.0.0-2" vs
            # "1.0.0-beta"), or digits int() refuses. The reference raises out of
            # the decision here; we call it UNKNOWN.
            return None
        if user_number > target_number:
            return 1
        if user_number < target_number:
            return -1
    if pre_user and not pre_target:
        return -1
    return 0
