"""What both client APIs share, above the wiring: the user-context calls and key checks.

``_SharedClient`` sits between the wiring (:mod:`flagstream.client_base`:
configuration, event processor, notifications and the per-call paths of
:mod:`flagstream.calls`) and the two APIs built on it, the optimizely-sdk calls
(:mod:`flagstream.client_experiments`, :mod:`flagstream.client_features`) and
``decide`` (:mod:`flagstream.client_decide`). Typed variable values and
impressions live in :mod:`flagstream.calls.shared` (``self._variables``,
``self._delivery``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flagstream.client_base import _ClientBase
from flagstream.user_context import DecideClient

__all__ = ["_SharedClient"]


def _is_key(value: object) -> bool:
    return isinstance(value, str) and bool(value)


if TYPE_CHECKING:
    # Every call makes user contexts with the client as their DecideClient; the final class
    # (flagstream.Optimizely) has those calls from client_decide and client_experiments.
    _UserContextCalls = DecideClient
else:
    _UserContextCalls = object


class _SharedClient(_ClientBase, _UserContextCalls):
    """The base of both APIs: the wiring, and the calls a user context makes on its client."""
