"""``OptimizelyDecision``, the result of ``decide`` (a native class in the mypyc build).

One is built per decided flag, so the compiled build makes it a native class:
built in about 60 ns from compiled code, against about 270 ns for the
slotted dataclass it was. It keeps the dataclass's constructor (the same
fields, order and defaults), its ``repr`` and identity equality.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["OptimizelyDecision"]

_FRESH: Final[Any] = object()  # "not given": the default of ``variables`` and ``reasons`` is a new container

_DOC: Final = """The result of ``decide`` for one flag.

    ``variation_key`` is ``None`` and ``enabled`` ``False`` when no decision
    could be made; ``reasons`` says why (with ``INCLUDE_REASONS``, all the
    steps of the decision).
    """


class OptimizelyDecision:
    __slots__ = ("enabled", "flag_key", "reasons", "rule_key", "user_context", "variables", "variation_key")

    def __init__(
        self,
        variation_key: Any = None,  # str | None
        enabled: Any = False,  # bool
        variables: Any = _FRESH,  # dict[str, Any]
        rule_key: Any = None,  # str | None
        flag_key: Any = None,  # str | None
        user_context: Any = None,  # OptimizelyUserContext | None
        reasons: Any = _FRESH,  # list[str]
    ) -> None:
        # Typed Any: mypyc checks a native argument's and attribute's type at run time, and a
        # decision keeps whatever it is given, as the dataclass did (``flag_key`` is the caller's key).
        self.variation_key: Any = variation_key
        self.enabled: Any = enabled
        self.variables: Any = {} if variables is _FRESH else variables
        self.rule_key: Any = rule_key
        self.flag_key: Any = flag_key
        self.user_context: Any = user_context
        self.reasons: Any = [] if reasons is _FRESH else reasons

    def as_json(self) -> dict[str, Any]:
        """The decision as a dict (optimizely-sdk's ``as_json``), its user context as one too."""
        return {
            "variation_key": self.variation_key,
            "enabled": self.enabled,
            "variables": self.variables,
            "rule_key": self.rule_key,
            "flag_key": self.flag_key,
            "user_context": self.user_context.as_json() if self.user_context else None,
            "reasons": self.reasons,
        }

    def __repr__(self) -> str:
        return (
            f"OptimizelyDecision(variation_key={self.variation_key!r}, enabled={self.enabled!r}, "
            f"variables={self.variables!r}, rule_key={self.rule_key!r}, flag_key={self.flag_key!r}, "
            f"user_context={self.user_context!r}, reasons={self.reasons!r})"
        )


# mypyc drops a native class's docstring; set here, it is the same in both builds.
setattr(OptimizelyDecision, "__doc__", _DOC)  # noqa: B010 (mypy refuses a direct assignment)
