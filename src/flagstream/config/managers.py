"""Config managers: where the client gets its current :class:`ProjectConfig`.

A config manager hands out the current config and may replace it over time.
The client asks it for the config on every call, so ``get_config`` must be
cheap and must never wait on the network once the first datafile has had its
chance to arrive.

- :class:`StaticConfigManager` holds the config built from one datafile.
- :class:`~flagstream.config.polling.PollingConfigManager` fetches the
  datafile for an SDK key in a background thread and swaps in each new
  revision.

Anything with ``get_config()`` (and, optionally, ``stop()``) can be passed to
the client as ``config_manager=``, as with optimizely-sdk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from flagstream._logging import LoggerLike, get_logger
from flagstream.config.project_config import ProjectConfig
from flagstream.errors import InvalidDatafileError, UnsupportedDatafileVersionError

__all__ = [
    "ConfigManager",
    "Datafile",
    "OnUpdate",
    "StaticConfigManager",
    "describe_error",
    "load_config",
]

#: What a datafile may be handed over as: JSON text, UTF-8 bytes, or an already parsed object.
Datafile = str | bytes | Mapping[str, Any]
#: Called with the new config each time the config changes (the client fires OPTIMIZELY_CONFIG_UPDATE).
OnUpdate = Callable[[ProjectConfig], object]


@runtime_checkable
class ConfigManager(Protocol):
    """What the client needs from a config manager."""

    def get_config(self) -> ProjectConfig | None:
        """The current config, or ``None`` when there is no usable datafile (yet)."""
        ...

    def stop(self) -> None:
        """Release background resources; ``get_config`` keeps returning the last config."""
        ...


def load_config(
    datafile: Datafile | None,
    *,
    skip_json_validation: bool,
    logger: LoggerLike,
    source: str = "datafile",
) -> ProjectConfig | None:
    """Build a config, or log one error line and return ``None``.

    The line names the first problem's JSON path and how many more there are,
    for example ``Provided datafile is invalid: experiments[3].trafficAllocation[0].endOfRange:
    expected integer, got string (and 2 more problems).``
    """
    if datafile is None:
        logger.error(f'Provided "{source}" is in an invalid format: no datafile was given.')
        return None
    try:
        return ProjectConfig.from_datafile(datafile, skip_json_validation=skip_json_validation, logger=logger)
    except InvalidDatafileError as exc:
        logger.error(describe_error(exc, source))
        return None


def describe_error(exc: InvalidDatafileError, source: str = "datafile") -> str:
    """One log line for a rejected datafile."""
    if isinstance(exc, UnsupportedDatafileVersionError):
        return str(exc)
    errors = exc.errors or (str(exc),)
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"Provided {source} is invalid: {errors[0]}{suffix}."


def notify(on_update: OnUpdate | None, config: ProjectConfig, logger: LoggerLike) -> None:
    """Call the update callback; a failing callback is logged, never propagated."""
    if on_update is None:
        return
    try:
        on_update(config)
    except Exception as exc:
        logger.error(f"Config update listener failed: {type(exc).__name__}: {exc}")


class StaticConfigManager:
    """The config built once from one datafile.

    An invalid datafile, or one of an unsupported version, is logged once and
    leaves ``get_config()`` returning ``None`` (the client is then not valid).

    >>> manager = StaticConfigManager('{"version": "9"}')
    >>> manager.get_config() is None
    True
    """

    __slots__ = ("_config", "_logger")

    def __init__(
        self,
        datafile: Datafile | None = None,
        skip_json_validation: bool = False,
        logger: object | None = None,
        on_update: OnUpdate | None = None,
    ) -> None:
        self._logger = get_logger(logger)
        self._config = load_config(datafile, skip_json_validation=skip_json_validation, logger=self._logger)
        if self._config is not None:
            self._logger.debug(f"Loaded datafile revision {self._config.revision}.")
            notify(on_update, self._config, self._logger)

    def get_config(self) -> ProjectConfig | None:
        """The config, or ``None`` when the datafile was not usable."""
        return self._config

    def stop(self) -> None:
        """Nothing to stop; present so every manager can be closed the same way."""


def __getattr__(name: str) -> Any:
    # PollingConfigManager lives in its own module; importing it here lazily keeps
    # `from flagstream.config.managers import PollingConfigManager` working without a cycle.
    if name == "PollingConfigManager":
        from flagstream.config.polling import PollingConfigManager  # noqa: PLC0415

        return PollingConfigManager
    raise AttributeError(name)
