"""User profiles: sticky bucketing through a user-provided service.

The service is any object with ``lookup(user_id) -> dict | None`` and
``save(profile: dict) -> None``; profiles have optimizely-sdk's format::

    {"user_id": "u1", "experiment_bucket_map": {"<experiment id>": {"variation_id": "<id>"}}}

A :class:`UserProfileTracker` loads a user's profile once, answers the stored
variation of each experiment, records new bucketings, and saves once at the
end, only when something changed. A service that raises or returns garbage
never breaks a decision: the failure is logged and the user is bucketed as
if there were no profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from flagstream._logging import LoggerLike
from flagstream.decision import messages as msg

__all__ = ["UserProfileService", "UserProfileTracker"]

USER_ID_KEY: Final = "user_id"
BUCKET_MAP_KEY: Final = "experiment_bucket_map"
VARIATION_ID_KEY: Final = "variation_id"


class UserProfileService(Protocol):
    """What a user profile service implements (optimizely-sdk's duck type)."""

    def lookup(self, user_id: str) -> Mapping[str, object] | None:
        """Return the stored profile dict of ``user_id``, or None."""
        ...

    def save(self, user_profile: dict[str, object]) -> None:
        """Store ``user_profile`` (``user_id`` and ``experiment_bucket_map``)."""
        ...


class UserProfileTracker:
    """One user's profile for the span of one decision call (load once, save once)."""

    __slots__ = ("_logger", "_service", "bucket_map", "profile_user_id", "updated", "user_id")

    def __init__(self, user_id: str, service: UserProfileService | None, logger: LoggerLike) -> None:
        self.user_id = user_id
        self._service = service
        self._logger = logger
        self.profile_user_id: object = user_id
        self.bucket_map: dict[object, object] = {}
        self.updated = False

    def load(self) -> None:
        """Look the profile up; a missing, malformed or failing lookup leaves it empty."""
        if self._service is None:
            return
        try:
            profile = self._service.lookup(self.user_id)
            if profile is None:
                return
            if USER_ID_KEY in profile and BUCKET_MAP_KEY in profile:
                profile_user_id = profile[USER_ID_KEY]
                bucket_map = profile[BUCKET_MAP_KEY] or {}
                self.profile_user_id = profile_user_id
                # A non-mapping bucket map makes the reference fail later, inside the
                # decision; we treat it as empty. Copied so we never mutate the
                # service's own object.
                self.bucket_map = dict(bucket_map) if isinstance(bucket_map, Mapping) else {}
                self._logger.info(msg.PROFILE_LOADED)
        except Exception:
            self._logger.exception(msg.PROFILE_LOOKUP_FAILED.format(self.user_id))

    def stored_variation_id(self, experiment_id: str) -> object:
        """The stored variation id for ``experiment_id`` (may be any JSON value), else None."""
        entry = self.bucket_map.get(experiment_id)
        if isinstance(entry, Mapping):
            return entry.get(VARIATION_ID_KEY)
        return None

    def record(self, experiment_id: str, variation_id: str) -> None:
        """Remember a new bucketing; it is saved by :meth:`save`."""
        self.bucket_map[experiment_id] = {VARIATION_ID_KEY: variation_id}
        self.updated = True

    def as_dict(self) -> dict[str, object]:
        """The profile in optimizely-sdk's format."""
        return {USER_ID_KEY: self.profile_user_id, BUCKET_MAP_KEY: self.bucket_map}

    def save(self) -> None:
        """Save the profile when a bucketing was recorded; failures are logged, never raised."""
        if not self.updated or self._service is None:
            return
        try:
            self._service.save(self.as_dict())
            self._logger.info(msg.PROFILE_SAVED.format(self.profile_user_id))
        except Exception as exc:
            self._logger.warning(msg.PROFILE_SAVE_FAILED.format(self.profile_user_id, exc))
