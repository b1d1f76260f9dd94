"""``DecisionService``: the decisions of optimizely-sdk 5.7, made fast.

The client calls it with the current ``ProjectConfig``. Per config it keeps a
compiled plan (audiences, allocations), so a decision does no parsing.
Reasons are built only when ``INCLUDE_REASONS`` is among the options, log
lines only when their level is on; both carry optimizely's exact texts.

>>> from flagstream.config.project_config import ProjectConfig
>>> config = ProjectConfig.from_datafile(DATAFILE)  # doctest: +SKIP
>>> service = DecisionService()
>>> flag = config.get_feature_from_key("checkout")  # doctest: +SKIP
>>> service.get_variation_for_feature(config, flag, SimpleUser("user-1")).variation  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from flagstream._logging import get_logger
from flagstream.config.project_config import ProjectConfig
from flagstream.decision._call import Call
from flagstream.decision._plan import Plan
from flagstream.decision._trace import Trace
from flagstream.decision.experiments import get_variation as _get_variation
from flagstream.decision.flags import decide_flag
from flagstream.decision.forced import ForcedVariationStore, validated_forced_decision
from flagstream.decision.options import DecideOption
from flagstream.decision.results import DecisionUser, FeatureDecision, VariationResult
from flagstream.decision.user_profile import UserProfileService, UserProfileTracker

if TYPE_CHECKING:
    from flagstream.config.entities import Experiment, FeatureFlag, Variation

__all__ = ["DecisionService"]

_INCLUDE_REASONS = DecideOption.INCLUDE_REASONS
_IGNORE_UPS = DecideOption.IGNORE_USER_PROFILE_SERVICE


def _has(options: object, name: str) -> bool:
    if not options:
        return False
    try:
        return name in options  # type: ignore[operator]
    except TypeError:
        return False


class DecisionService:
    """Bucketing, targeting, forced variations and sticky bucketing for one client.

    ``logger`` receives optimizely-sdk's log lines (the SDK logger by default);
    ``user_profile_service`` is any object with ``lookup(user_id)`` and
    ``save(profile)``. Thread-safe: the forced-variation map takes a lock for
    writes, everything else is immutable or per call.
    """

    __slots__ = ("_forced", "_logger", "_plan", "user_profile_service")

    def __init__(
        self, logger: object | None = None, user_profile_service: UserProfileService | None = None
    ) -> None:
        self._logger = get_logger(logger)
        self.user_profile_service = user_profile_service
        self._forced = ForcedVariationStore()
        self._plan: Plan | None = None

    # -- plumbing ----------------------------------------------------------

    def plan(self, config: ProjectConfig) -> Plan:
        """The compiled plan of ``config`` (built on first use; the client may call it when a config lands)."""
        plan = self._plan
        if plan is None or plan.config is not config:
            plan = Plan(config)
            self._plan = plan
        return plan

    def prepare(self, config: object) -> None:
        """Compile ``config`` for decisions now (call it when a new config lands), not on first use.

        Without it each flag, rule and audience is compiled the first time a
        decision needs it. Never raises.
        """
        if not isinstance(config, ProjectConfig):  # typed object: the compiled build checks types
            self._logger.error(
                f"Unable to prepare {type(config).__name__} for decisions: not a ProjectConfig."
            )
            return
        try:
            self.plan(config).warm()
        except Exception:
            self._logger.exception("Unable to prepare the config for decisions.")

    def _call(self, user: DecisionUser, options: object) -> Call:
        return Call(self._logger, [] if _has(options, _INCLUDE_REASONS) else None, user)

    def new_user_profile_tracker(self, user_id: str) -> UserProfileTracker | None:
        """Load ``user_id``'s profile (one lookup); None when there is no user profile service."""
        if self.user_profile_service is None:
            return None
        tracker = UserProfileTracker(user_id, self.user_profile_service, self._logger)
        tracker.load()
        return tracker

    # -- experiments -------------------------------------------------------

    def get_variation(
        self,
        config: ProjectConfig,
        experiment: Experiment,
        user: DecisionUser,
        user_profile_tracker: UserProfileTracker | None = None,
        options: Collection[str] = (),
    ) -> VariationResult:
        """The user's variation of ``experiment`` (the ``activate``/``get_variation`` path).

        Pass the tracker from :meth:`new_user_profile_tracker` and call its
        ``save()`` afterwards for sticky bucketing. Never raises.
        """
        c = self._call(user, options)
        tracker = None if _has(options, _IGNORE_UPS) else user_profile_tracker
        try:
            variation = _get_variation(self.plan(config), experiment, c, self._forced, tracker)
        except Exception:
            self._logger.exception(f'Unable to decide experiment "{getattr(experiment, "key", experiment)}".')
            variation = None
        return VariationResult(variation, c.reasons if c.reasons is not None else [])

    # -- flags -------------------------------------------------------------

    def get_variation_for_feature(
        self, config: ProjectConfig, feature: FeatureFlag, user: DecisionUser, options: Collection[str] = ()
    ) -> FeatureDecision:
        """The user's decision for one flag: holdouts, feature tests, then the rollout.

        One user profile lookup and at most one save. Never raises.
        """
        c = self._call(user, options)
        plan = self.plan(config)
        tracker = None
        if self.user_profile_service is not None and not _has(options, _IGNORE_UPS):
            tracker = self.new_user_profile_tracker(c.user_id)
        try:
            decision = decide_flag(plan, plan.flag(feature), c, self._forced, tracker)
        except Exception:
            self._logger.exception(f'Unable to decide flag "{getattr(feature, "key", feature)}".')
            decision = FeatureDecision(None, None, "rollout", c.reasons if c.reasons is not None else [])
        if tracker is not None:
            tracker.save()
        return decision

    def get_variations_for_feature_list(
        self,
        config: ProjectConfig,
        features: Iterable[FeatureFlag],
        user: DecisionUser,
        options: Collection[str] = (),
    ) -> list[FeatureDecision]:
        """The user's decisions for several flags, with one profile lookup and at most one save.

        The lookup happens even for an empty list (as the reference does);
        ``IGNORE_USER_PROFILE_SERVICE`` skips both. Never raises.
        """
        c = self._call(user, options)
        plan = self.plan(config)
        tracker = None
        if self.user_profile_service is not None and not _has(options, _IGNORE_UPS):
            tracker = self.new_user_profile_tracker(c.user_id)
        decisions: list[FeatureDecision] = []
        for feature in features:
            c.new_reasons()
            try:
                decisions.append(decide_flag(plan, plan.flag(feature), c, self._forced, tracker))
            except Exception:
                self._logger.exception(f'Unable to decide flag "{getattr(feature, "key", feature)}".')
                decisions.append(
                    FeatureDecision(None, None, "rollout", c.reasons if c.reasons is not None else [])
                )
        if tracker is not None:
            tracker.save()
        return decisions

    # -- forced variations and decisions ----------------------------------

    def set_forced_variation(
        self, config: ProjectConfig, experiment_key: str, user_id: str, variation_key: str | None
    ) -> bool:
        """Force ``user_id`` into a variation of an experiment; ``variation_key=None`` clears it."""
        try:
            return self._forced.set(config, experiment_key, user_id, variation_key, Trace(self._logger, None))
        except Exception:
            self._logger.exception("Unable to set the forced variation.")
            return False

    def get_forced_variation(
        self, config: ProjectConfig, experiment_key: str, user_id: str
    ) -> tuple[Variation | None, list[str]]:
        """The variation ``user_id`` was forced into for the experiment, and the reason."""
        t = Trace(self._logger, [])
        try:
            variation = self._forced.get(config, experiment_key, user_id, t)
        except Exception:
            self._logger.exception("Unable to get the forced variation.")
            variation = None
        return variation, t.reasons if t.reasons is not None else []

    def find_validated_forced_decision(
        self, config: ProjectConfig, flag_key: str, rule_key: str | None, user: DecisionUser
    ) -> tuple[Variation | None, list[str]]:
        """The user's forced decision for the flag (``rule_key=None``) or a rule, when it names
        a variation of the flag's rules; the reasons say which, as optimizely's texts.
        """
        t = Trace(self._logger, [])
        try:
            user_id = user.user_id
            variation = validated_forced_decision(self.plan(config), flag_key, rule_key, user, user_id, t)
        except Exception:
            self._logger.exception("Unable to read the forced decision.")
            variation = None
        return variation, t.reasons if t.reasons is not None else []
