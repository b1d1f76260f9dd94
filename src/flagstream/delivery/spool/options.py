"""How a processor is given a spool: a path, a mapping of options, an ``EventSpool``, or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Union

from flagstream.delivery.spool.spool import EventSpool
from flagstream.errors import ConfigurationError

__all__ = ["SPOOL_ENV", "SpoolOption", "open_spool"]

#: A spool directory for every processor that is not given ``spool=`` (``spool=False`` opts out).
SPOOL_ENV = "FLAGSTREAM_SPOOL_DIR"

SpoolOption = Union[str, "os.PathLike[str]", EventSpool, Mapping[str, object], bool, None]


def open_spool(option: SpoolOption, logger: object | None) -> tuple[EventSpool | None, bool]:
    """The spool ``option`` names, and whether the processor owns (and so closes) it.

    Raises :class:`~flagstream.errors.ConfigurationError` for a directory that
    cannot be created or locked, and for unknown or invalid options.
    """
    if option is None:
        option = os.environ.get(SPOOL_ENV) or False
    if option is False:
        return None, False
    if isinstance(option, EventSpool):
        return option, False
    if isinstance(option, (str, os.PathLike)):
        return EventSpool(option, logger=logger), True
    if isinstance(option, Mapping):
        options = dict(option)
        directory = options.pop("directory", None)
        if directory is None:
            raise ConfigurationError("spool options need a 'directory'")
        try:
            return EventSpool(directory, logger=logger, **options), True  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigurationError(f"spool options: {exc}") from None
    raise ConfigurationError(
        f"spool must be a directory, a dict of EventSpool options or an EventSpool, not {type(option).__name__}"
    )
