"""Both decision services side by side on one datafile: optimizely-sdk 5.7's and ours."""

from __future__ import annotations

import copy
import json
from typing import Any

from optimizely import decision_service as opt_ds
from optimizely import logger as opt_logger
from optimizely import optimizely_user_context as opt_uc
from optimizely import project_config as opt_pc
from optimizely import user_profile as opt_up
from optimizely.error_handler import NoOpErrorHandler

from flagstream.config.project_config import ProjectConfig
from flagstream.decision import DecisionService


class RecordingProfiles:
    """An in-memory user profile service that records every call."""

    def __init__(self, profiles: dict[str, Any] | None = None) -> None:
        self.profiles = copy.deepcopy(profiles or {})
        self.calls: list[tuple[str, Any]] = []

    def lookup(self, user_id: str) -> Any:
        self.calls.append(("lookup", user_id))
        found = self.profiles.get(user_id)
        return copy.deepcopy(found)

    def save(self, profile: dict[str, Any]) -> None:
        self.calls.append(("save", copy.deepcopy(profile)))
        self.profiles[profile["user_id"]] = copy.deepcopy(profile)


class User:
    """Our DecisionUser with forced decisions."""

    def __init__(self, user_id: Any, attributes: Any, forced: dict[tuple[str, str | None], str]) -> None:
        self.user_id = user_id
        self.attributes = attributes
        self.forced = forced

    def get_forced_decision_variation_key(self, flag_key: str, rule_key: str | None) -> str | None:
        return self.forced.get((flag_key, rule_key))


def _key(entity: Any) -> Any:
    if entity is None:
        return None
    if isinstance(entity, dict):
        return entity["key"]
    return entity.key


class Pair:
    """One datafile loaded into both SDKs' decision services."""

    def __init__(
        self,
        datafile: dict[str, Any],
        profiles: dict[str, Any] | None = None,
        logger: Any = None,
        opt_log: Any = None,
    ) -> None:
        text = json.dumps(datafile)
        self.datafile = datafile
        self.opt_logger = opt_log or opt_logger.NoOpLogger()
        self.opt_config = opt_pc.ProjectConfig(text, self.opt_logger, NoOpErrorHandler())
        self.opt_ups = RecordingProfiles(profiles) if profiles is not None else None
        self.opt = opt_ds.DecisionService(self.opt_logger, self.opt_ups, None)  # type: ignore[arg-type]
        self.config = ProjectConfig.from_datafile(text, skip_json_validation=True)
        self.ups = RecordingProfiles(profiles) if profiles is not None else None
        self.ours = DecisionService(logger, self.ups)

    # -- users -------------------------------------------------------------

    def opt_user(self, user_id: Any, attrs: Any, forced: dict[tuple[str, str | None], str]) -> Any:
        uc = opt_uc.OptimizelyUserContext(None, self.opt_logger, user_id, attrs, identify=False)  # type: ignore[arg-type]
        for (flag, rule), vkey in forced.items():
            uc.set_forced_decision(
                uc.OptimizelyDecisionContext(flag, rule), uc.OptimizelyForcedDecision(vkey)
            )
        return uc

    # -- calls, each returning (theirs, ours) in comparable form -----------

    def flags(
        self,
        user_id: Any,
        attrs: Any,
        forced: dict[tuple[str, str | None], str],
        keys: list[str],
        options: list[str],
    ) -> tuple[list[Any], list[Any]]:
        opt_features = [self.opt_config.feature_key_map[k] for k in keys]
        results = self.opt.get_variations_for_feature_list(
            self.opt_config, opt_features, self.opt_user(user_id, attrs, forced), list(options)
        )
        include = "INCLUDE_REASONS" in options
        theirs = []
        for r in results:
            d = r["decision"]
            h = r.get("holdout_decision")
            theirs.append(
                (
                    _key(d.experiment),
                    _key(d.variation),
                    d.source,
                    r["reasons"] if include else [],
                    None if h is None else (_key(h.experiment), _key(h.variation), h.source),
                )
            )
        features = [self.config.feature_key_map[k] for k in keys]
        decisions = self.ours.get_variations_for_feature_list(
            self.config,
            features,
            User(user_id, dict(attrs) if isinstance(attrs, dict) else attrs, forced),
            options,
        )
        ours = []
        for d in decisions:
            h = d.holdout_decision
            ours.append(
                (
                    _key(d.experiment),
                    _key(d.variation),
                    d.source,
                    d.reasons,
                    None if h is None else (_key(h.experiment), _key(h.variation), h.source),
                )
            )
        return theirs, ours

    def variation(self, experiment_key: str, user_id: Any, attrs: Any, options: list[str]) -> tuple[Any, Any]:
        exp = self.opt_config.get_experiment_from_key(experiment_key)
        uc = self.opt_user(user_id, attrs, {})
        tracker = opt_up.UserProfileTracker(user_id, self.opt_ups, self.opt_logger)
        tracker.load_user_profile()
        result = self.opt.get_variation(self.opt_config, exp, uc, tracker, [], options)
        tracker.save_user_profile()
        theirs = (_key(result["variation"]), result["reasons"] if "INCLUDE_REASONS" in options else [])

        ours_exp = self.config.get_experiment_from_key(experiment_key)
        assert ours_exp is not None
        our_tracker = self.ours.new_user_profile_tracker(user_id)
        vr = self.ours.get_variation(self.config, ours_exp, User(user_id, attrs, {}), our_tracker, options)
        if our_tracker is not None:
            our_tracker.save()
        return theirs, (_key(vr.variation), vr.reasons)

    def set_forced(self, experiment_key: Any, user_id: Any, variation_key: Any) -> tuple[Any, Any]:
        return (
            self.opt.set_forced_variation(self.opt_config, experiment_key, user_id, variation_key),
            self.ours.set_forced_variation(self.config, experiment_key, user_id, variation_key),
        )

    def get_forced(self, experiment_key: Any, user_id: Any) -> tuple[Any, Any]:
        v1, r1 = self.opt.get_forced_variation(self.opt_config, experiment_key, user_id)
        v2, r2 = self.ours.get_forced_variation(self.config, experiment_key, user_id)
        return (_key(v1), r1), (_key(v2), r2)

    def flag_forced(
        self, flag_key: str, rule_key: str | None, user_id: Any, forced: dict[tuple[str, str | None], str]
    ) -> tuple[Any, Any]:
        uc = self.opt_user(user_id, {}, forced)
        v1, r1 = self.opt.validated_forced_decision(
            self.opt_config, uc.OptimizelyDecisionContext(flag_key, rule_key), uc
        )
        v2, r2 = self.ours.find_validated_forced_decision(
            self.config, flag_key, rule_key, User(user_id, {}, forced)
        )
        return (_key(v1), r1), (_key(v2), r2)
