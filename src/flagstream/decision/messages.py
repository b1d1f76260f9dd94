"""The texts of decision reasons and decision log lines.

Reasons are part of the observable API (``INCLUDE_REASONS`` and the DECISION
notification), so each text equals, character for character, what
optimizely-sdk 5.7 produces for the same step; the differential tests compare
them. Templates use ``str.format`` positional fields and are only formatted
when a reason is being collected or the log level is on.
"""

from __future__ import annotations

from typing import Final

# --- audience evaluation (log lines only, never reasons) ----------------------------------------
AUDIENCE_RESULT: Final = 'Audience "{}" evaluated to {}.'
EVALUATING_AUDIENCE: Final = 'Starting to evaluate audience "{}" with conditions: {}.'
INFINITE_ATTRIBUTE_VALUE: Final = (
    'Audience condition "{}" evaluated to UNKNOWN because the number value '
    'for user attribute "{}" is not in the range [-2^53, +2^53].'
)
MISSING_ATTRIBUTE_VALUE: Final = (
    'Audience condition {} evaluated to UNKNOWN because no value was passed for user attribute "{}".'
)
NULL_ATTRIBUTE_VALUE: Final = (
    'Audience condition "{}" evaluated to UNKNOWN because a null value was passed for user attribute "{}".'
)
UNEXPECTED_TYPE: Final = (
    'Audience condition "{}" evaluated to UNKNOWN because a value of type "{}" was passed '
    'for user attribute "{}".'
)
UNKNOWN_CONDITION_TYPE: Final = (
    'Audience condition "{}" uses an unknown condition type. '
    "You may need to upgrade to a newer release of the Optimizely SDK."
)
UNKNOWN_CONDITION_VALUE: Final = (
    'Audience condition "{}" has an unsupported condition value. '
    "You may need to upgrade to a newer release of the Optimizely SDK."
)
UNKNOWN_MATCH_TYPE: Final = (
    'Audience condition "{}" uses an unknown match type. '
    "You may need to upgrade to a newer release of the Optimizely SDK."
)
INVALID_ATTRIBUTE_FORMAT: Final = "Attributes provided are in an invalid format."

# --- audience evaluation (reasons) -----------------------------------------------------------------
EXPERIMENT_AUDIENCES_EVALUATING: Final = 'Evaluating audiences for experiment "{}": {}.'
EXPERIMENT_AUDIENCES_RESULT: Final = 'Audiences for experiment "{}" collectively evaluated to {}.'
RULE_AUDIENCES_EVALUATING: Final = "Evaluating audiences for rule {}: {}."
RULE_AUDIENCES_RESULT: Final = "Audiences for rule {} collectively evaluated to {}."

# --- bucketing ---------------------------------------------------------------------------------------
ASSIGNED_BUCKET: Final = 'Assigned bucket {} to user with bucketing ID "{}".'
INVALID_ENTITY_KEY: Final = "Invalid entity key provided for bucketing. Returning nil."
EMPTY_TRAFFIC_RANGE: Final = "Bucketed into an empty traffic range. Returning nil."
IN_NO_EXPERIMENT: Final = 'User "{}" is in no experiment.'
NOT_IN_GROUP_EXPERIMENT: Final = 'User "{}" is not in experiment "{}" of group {}.'
IN_GROUP_EXPERIMENT: Final = 'User "{}" is in experiment {} of group {}.'
BUCKETING_ID_NOT_STRING: Final = "Bucketing ID attribute is not a string. Defaulted to user_id."

# --- experiments -------------------------------------------------------------------------------------
EXPERIMENT_NOT_RUNNING: Final = 'Experiment "{}" is not running.'
FORCED_IN_VARIATION: Final = 'User "{}" is forced in variation "{}".'
FOUND_STORED_DECISION: Final = 'Found a stored decision. User "{}" is in variation "{}" of experiment "{}".'
RETURNING_STORED_VARIATION: Final = (
    'Returning previously activated variation ID "{}" of experiment "{}" for user "{}" from user profile.'
)
USER_PROFILE_INVALID_FORMAT: Final = "User profile has invalid format."
NOT_IN_EXPERIMENT_AUDIENCE: Final = 'User "{}" does not meet conditions to be in experiment "{}".'
IN_VARIATION: Final = 'User "{}" is in variation "{}" of experiment {}.'
IN_NO_VARIATION: Final = 'User "{}" is in no variation.'
UNABLE_TO_SAVE_PROFILE_FOR_USER: Final = 'Unable to save user profile for user "{}".'

# --- forced variations (set_forced_variation) ------------------------------------------------------
FORCED_REMOVED: Final = 'Variation mapped to experiment "{}" has been removed for user "{}".'
FORCED_NOTHING_TO_REMOVE_EXPERIMENT: Final = (
    'Nothing to remove. Variation mapped to experiment "{}" for user "{}" does not exist.'
)
FORCED_NOTHING_TO_REMOVE_USER: Final = (
    'Nothing to remove. User "{}" does not exist in the forced variation map.'
)
FORCED_VARIATION_KEY_INVALID: Final = "Variation key is invalid."
FORCED_SET: Final = 'Set variation "{}" for experiment "{}" and user "{}" in the forced variation map.'
FORCED_USER_NOT_IN_MAP: Final = 'User "{}" is not in the forced variation map.'
FORCED_NO_EXPERIMENT_FOR_USER: Final = 'No experiment "{}" mapped to user "{}" in the forced variation map.'
FORCED_NO_VARIATION_FOR_EXPERIMENT: Final = (
    'No variation mapped to experiment "{}" in the forced variation map.'
)
FORCED_VARIATION_MAPPED: Final = (
    'Variation "{}" is mapped to experiment "{}" and user "{}" in the forced variation map'
)

# --- forced decisions (user context) ---------------------------------------------------------------
FORCED_DECISION_WITH_RULE: Final = (
    "Variation ({}) is mapped to flag ({}), rule ({}) and user ({}) in the forced decision map."
)
FORCED_DECISION_WITHOUT_RULE: Final = (
    "Variation ({}) is mapped to flag ({}) and user ({}) in the forced decision map."
)
FORCED_DECISION_WITH_RULE_INVALID: Final = (
    "Invalid variation is mapped to flag ({}), rule ({}) and user ({}) in the forced decision map."
)
FORCED_DECISION_WITHOUT_RULE_INVALID: Final = (
    "Invalid variation is mapped to flag ({}) and user ({}) in the forced decision map."
)

# --- rollouts ----------------------------------------------------------------------------------------
NO_ROLLOUT: Final = "There is no rollout of feature {}."
ROLLOUT_HAS_NO_EXPERIMENTS: Final = "Rollout {} has no experiments."
MEETS_RULE_AUDIENCE: Final = 'User "{}" meets audience conditions for targeting rule {}.'
BUCKETED_INTO_RULE: Final = 'User "{}" bucketed into a targeting rule {}.'
NOT_BUCKETED_INTO_RULE: Final = (
    'User "{}" not bucketed into a targeting rule {}. Checking "Everyone Else" rule now.'
)
NOT_IN_RULE_AUDIENCE: Final = 'User "{}" does not meet audience conditions for targeting rule {}.'
BUCKETED_INTO_ROLLOUT: Final = 'User "{}" bucketed into rollout for feature "{}".'
NOT_BUCKETED_INTO_ROLLOUT: Final = 'User "{}" not bucketed into any rollout for feature "{}".'
EVERYONE_ELSE: Final = "Everyone Else"

# --- holdouts ----------------------------------------------------------------------------------------
HOLDOUT_NOT_RUNNING: Final = "Holdout '{}' is not running."
NOT_IN_HOLDOUT_AUDIENCE: Final = "User '{}' does not meet the conditions for holdout '{}'."
IN_HOLDOUT_VARIATION: Final = "The user '{}' is bucketed into variation '{}' of holdout '{}'."
NOT_IN_HOLDOUT_VARIATION: Final = "User '{}' is not bucketed into any variation for holdout '{}'."
IN_GLOBAL_HOLDOUT: Final = "The user '{}' is bucketed into holdout '{}' for feature flag '{}'."
HOLDOUT_EXCLUDES_TARGETED: Final = (
    "Holdout '{}' excludes targeted deliveries. Targeted delivery rules will be evaluated."
)
HOLDOUT_CONTINUES_TO_ROLLOUT: Final = (
    'Holdout "{}" has excludeTargetedDeliveries enabled, continuing to rollout evaluation.'
)
IN_LOCAL_HOLDOUT_EXPERIMENT: Final = (
    "The user '{}' is bucketed into local holdout '{}' for experiment rule '{}'."
)
IN_LOCAL_HOLDOUT_DELIVERY: Final = "The user '{}' is bucketed into local holdout '{}' for delivery rule '{}'."

# --- user profiles -----------------------------------------------------------------------------------
PROFILE_LOADED: Final = "User profile loaded successfully."
PROFILE_LOOKUP_FAILED: Final = 'Unable to retrieve user profile for user "{}" as lookup failed.'
PROFILE_SAVED: Final = 'Saved user profile of user "{}".'
PROFILE_SAVE_FAILED: Final = 'Failed to save user profile of user "{}" for exception:{}".'

# --- datafile lookups that optimizely's ProjectConfig logs --------------------------------------
EXPERIMENT_KEY_NOT_IN_DATAFILE: Final = 'Experiment key "{}" is not in datafile.'
EXPERIMENT_ID_NOT_IN_DATAFILE: Final = 'Experiment ID "{}" is not in datafile.'
VARIATION_KEY_NOT_IN_DATAFILE: Final = 'Variation key "{}" is not in datafile.'
VARIATION_ID_NOT_IN_DATAFILE: Final = 'Variation ID "{}" is not in datafile.'
VARIATION_NOT_IN_EXPERIMENT: Final = 'Variation with id "{}" not defined in the datafile for experiment "{}".'
GROUP_NOT_IN_DATAFILE: Final = 'Group ID "{}" is not in datafile.'
AUDIENCE_NOT_IN_DATAFILE: Final = 'Audience ID "{}" is not in datafile.'
ROLLOUT_NOT_IN_DATAFILE: Final = 'Rollout with ID "{}" is not in datafile.'
