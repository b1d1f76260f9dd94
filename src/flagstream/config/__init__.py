"""Datafiles: parsing into ``ProjectConfig``, validation, and config managers (static and polling)."""

from __future__ import annotations

from flagstream.config.managers import ConfigManager, StaticConfigManager
from flagstream.config.polling import PollingConfigManager
from flagstream.config.project_config import ProjectConfig
from flagstream.config.validation import validate_datafile, validate_datafile_text

__all__ = [
    "ConfigManager",
    "PollingConfigManager",
    "ProjectConfig",
    "StaticConfigManager",
    "validate_datafile",
    "validate_datafile_text",
]
