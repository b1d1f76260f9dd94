"""Decisions: bucketing, audiences, experiments, flags, forced variations, user profiles.

Everything here decides exactly as optimizely-sdk 5.7 does from the same
datafile, including the reason texts ``INCLUDE_REASONS`` returns.
"""

from __future__ import annotations

from flagstream.decision.bucketing import bucket_value
from flagstream.decision.options import DecideOption
from flagstream.decision.results import (
    DecisionSource,
    DecisionUser,
    FeatureDecision,
    SimpleUser,
    VariationResult,
)
from flagstream.decision.service import DecisionService
from flagstream.decision.user_profile import UserProfileService, UserProfileTracker

__all__ = [
    "DecideOption",
    "DecisionService",
    "DecisionSource",
    "DecisionUser",
    "FeatureDecision",
    "SimpleUser",
    "UserProfileService",
    "UserProfileTracker",
    "VariationResult",
    "bucket_value",
]
