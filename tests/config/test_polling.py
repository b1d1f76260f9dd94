from __future__ import annotations

import copy
import json
import os
import select
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from datafile_server import CapturingLogger, DatafileServer, Reply, serve

from flagstream.config.managers import ConfigManager, StaticConfigManager
from flagstream.config.polling import DEFAULT_BLOCKING_TIMEOUT, DEFAULT_UPDATE_INTERVAL, PollingConfigManager
from flagstream.config.project_config import ProjectConfig
from flagstream.errors import ConfigurationError

pytestmark = pytest.mark.timeout(60)

DATAFILE: dict[str, Any] = {
    "version": "4",
    "accountId": "1",
    "projectId": "2",
    "revision": "1",
    "sdkKey": "key-from-datafile",
    "attributes": [],
    "audiences": [],
    "events": [],
    "experiments": [],
    "groups": [],
    "featureFlags": [],
    "rollouts": [],
}


def revision(n: int) -> dict[str, Any]:
    datafile = copy.deepcopy(DATAFILE)
    datafile["revision"] = str(n)
    return datafile


class Updates:
    """on_update callback that lets a test wait for a revision."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, config: ProjectConfig) -> None:
        with self.cond:
            self.seen.append(config.revision)
            self.cond.notify_all()

    def wait_for(self, rev: str, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: rev in self.seen, timeout)


@pytest.fixture
def server() -> Iterator[DatafileServer]:
    with serve(revision(1)) as state:
        yield state


@pytest.fixture
def managers(server: DatafileServer) -> Iterator[list[PollingConfigManager]]:
    made: list[PollingConfigManager] = []
    yield made
    server.closing.set()  # hanging replies end now, so pollers see their connection drop
    for manager in made:
        manager.stop()
        manager.join(5)


def poller(managers: list[PollingConfigManager], url: str, **options: Any) -> PollingConfigManager:
    options.setdefault("update_interval", 60)
    options.setdefault("blocking_timeout", 5)
    options.setdefault("request_timeout", 5)
    manager = PollingConfigManager(url=url, **options)
    managers.append(manager)
    return manager


def test_polling_manager_is_a_config_manager(server, managers):
    assert isinstance(poller(managers, server.url), ConfigManager)
    assert isinstance(StaticConfigManager(DATAFILE), ConfigManager)


def test_first_get_config_waits_for_the_first_datafile(server, managers):
    config = poller(managers, server.url).get_config()
    assert config is not None
    assert config.revision == "1"


def test_new_revision_replaces_config_and_fires_on_update(server, managers):
    updates = Updates()
    manager = poller(managers, server.url, update_interval=0.05, on_update=updates)
    assert updates.wait_for("1")
    server.set_datafile(revision(2), 1_700_000_100)
    assert updates.wait_for("2")
    config = manager.get_config()
    assert config is not None
    assert config.revision == "2"


def test_if_modified_since_is_sent_and_304_keeps_the_config(server, managers):
    updates = Updates()
    manager = poller(managers, server.url, update_interval=0.05, on_update=updates)
    assert server.wait_for_requests(3)
    first, second = server.requests[0], server.requests[1]
    assert "If-Modified-Since" not in first
    assert second["If-Modified-Since"] == server.last_modified
    assert updates.seen == ["1"]
    config = manager.get_config()
    assert config is not None
    assert config.revision == "1"


def test_same_revision_with_new_last_modified_does_not_fire_on_update(server, managers):
    updates = Updates()
    poller(managers, server.url, update_interval=0.05, on_update=updates)
    assert updates.wait_for("1")
    server.set_datafile(revision(1), 1_700_000_500)
    count = len(server.requests)
    assert server.wait_for_requests(count + 3)
    assert updates.seen == ["1"]


def test_server_errors_are_retried_then_logged_and_the_old_config_kept(server, managers):
    logger = CapturingLogger()
    updates = Updates()
    manager = poller(managers, server.url, update_interval=0.05, on_update=updates, logger=logger)
    assert updates.wait_for("1")
    count = len(server.requests)
    server.replies.extend([Reply(500), Reply(502), Reply(503), Reply(504)])
    assert server.wait_for_requests(count + 5)
    errors = logger.at("error")
    assert f"Fetching datafile from {server.url} failed. Error: HTTP 504" in errors
    config = manager.get_config()
    assert config is not None
    assert config.revision == "1"


def test_a_failing_round_is_retried_within_the_round(server, managers):
    server.replies.extend([Reply(503), Reply(500)])
    config = poller(managers, server.url).get_config()
    assert config is not None
    assert config.revision == "1"
    assert len(server.requests) == 3


def test_gzip_encoded_datafile_is_decoded(server, managers):
    server.replies.append(Reply(200, json.dumps(revision(5)).encode(), gzip=True))
    config = poller(managers, server.url).get_config()
    assert config is not None
    assert config.revision == "5"
    assert "gzip" in server.requests[0]["Accept-Encoding"]


def test_connection_dropped_mid_body_is_retried_within_the_round(server, managers):
    server.replies.append(Reply(200, json.dumps(revision(5)).encode(), cut_after=20))
    config = poller(managers, server.url).get_config()
    assert config is not None
    assert config.revision == "1"  # the retry got the whole (current) datafile
    assert len(server.requests) == 2


def test_error_bodies_are_drained_so_the_kept_alive_connection_is_reused_safely(server, managers):
    server.replies.extend([Reply(500, b"x" * 100_000), Reply(503, b"y" * 10)])
    config = poller(managers, server.url).get_config()
    assert config is not None
    assert config.revision == "1"


def test_garbage_from_the_server_is_logged_and_the_old_config_kept(server, managers):
    logger = CapturingLogger()
    manager = poller(managers, server.url, update_interval=0.05, logger=logger)
    assert manager.get_config() is not None
    count = len(server.requests)
    server.replies.append(Reply(200, b'{"version": "4", "revis'))
    assert server.wait_for_requests(count + 2)
    assert any(
        line.startswith(f"Provided datafile from {server.url} is invalid: ")
        and "line 1 column" in line
        and line.endswith("(keeping revision 1)")
        for line in logger.at("error")
    ), logger.lines
    assert manager.get_config().revision == "1"  # type: ignore[union-attr]


def test_invalid_datafile_from_the_server_names_the_json_path(server, managers):
    logger = CapturingLogger()
    bad = revision(2)
    bad["experiments"] = [{"id": "1"}]
    server.set_datafile(bad, 1_700_000_000)
    manager = poller(managers, server.url, logger=logger, blocking_timeout=5)
    assert manager.get_config() is None
    assert (
        f"Provided datafile from {server.url} is invalid: experiments[0].key: missing required field"
        " (and 6 more problems). (no config yet)" in logger.at("error")
    )


def test_unsupported_version_from_the_server_is_logged(server, managers):
    logger = CapturingLogger()
    server.set_datafile({**revision(2), "version": "5"}, 1_700_000_000)
    assert poller(managers, server.url, logger=logger).get_config() is None
    assert any("does not support the given datafile version" in line for line in logger.at("error"))


def test_access_token_is_sent_as_a_bearer_token(server, managers):
    server.required_token = "s3cret"
    config = poller(managers, server.url, datafile_access_token="s3cret").get_config()
    assert config is not None
    assert server.requests[0]["Authorization"] == "Bearer s3cret"


def test_wrong_access_token_leaves_no_config(server, managers):
    logger = CapturingLogger()
    server.required_token = "s3cret"
    assert poller(managers, server.url, datafile_access_token="nope", logger=logger).get_config() is None
    assert f"Fetching datafile from {server.url} failed. Error: HTTP 403" in logger.at("error")


def test_get_config_waits_at_most_blocking_timeout_in_total_then_never_again(server, managers):
    server.replies.append(Reply(200, b"", delay=30))
    manager = poller(managers, server.url, blocking_timeout=0.3, request_timeout=30)
    started = time.monotonic()
    assert manager.get_config() is None
    waited = time.monotonic() - started
    assert 0.2 <= waited < 2.0
    started = time.monotonic()
    for _ in range(100):
        assert manager.get_config() is None
    assert time.monotonic() - started < 0.1


def test_get_config_returns_at_once_when_the_first_round_failed(server, managers):
    server.datafile = None  # 404
    manager = poller(managers, server.url, blocking_timeout=30)
    started = time.monotonic()
    assert manager.get_config() is None
    assert time.monotonic() - started < 5


def test_stop_returns_promptly_while_a_request_hangs(server, managers):
    server.replies.append(Reply(200, b"", delay=30))
    manager = poller(managers, server.url, request_timeout=0.5)
    assert server.wait_for_requests(1)
    started = time.monotonic()
    manager.stop(timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert manager.join(5)  # the request times out, the thread sees stop and ends


def test_stop_interrupts_the_wait_between_polls(server, managers):
    manager = poller(managers, server.url, update_interval=300)
    assert manager.get_config() is not None
    started = time.monotonic()
    manager.stop()
    assert not manager.is_running
    assert time.monotonic() - started < 1.0
    assert manager.get_config() is not None  # the last config stays available


def test_initial_datafile_is_used_at_once_and_its_sdk_key_builds_the_url(managers):
    manager = PollingConfigManager(
        datafile=revision(7), url_template="http://127.0.0.1:9/{sdk_key}.json", start=False
    )
    managers.append(manager)
    assert manager.datafile_url == "http://127.0.0.1:9/key-from-datafile.json"
    assert manager.get_config().revision == "7"  # type: ignore[union-attr]


def test_default_urls_follow_optimizely(managers):
    plain = PollingConfigManager(sdk_key="abc", start=False)
    auth = PollingConfigManager(sdk_key="abc", datafile_access_token="t", start=False)
    managers.extend([plain, auth])
    assert plain.datafile_url == "https://cdn.optimizely.com/datafiles/abc.json"
    assert auth.datafile_url == "https://config.optimizely.com/datafiles/auth/abc.json"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"sdk_key": "k", "url_template": "{nope}"},
        {"sdk_key": "k", "update_interval": "fast"},
        {"sdk_key": "k", "blocking_timeout": "long"},
        {"sdk_key": "k", "datafile_access_token": ""},
        {"sdk_key": "k", "request_timeout": 0},
        {"sdk_key": "k", "update_interval": True},
    ],
)
def test_bad_options_raise_configuration_error(options):
    with pytest.raises(ConfigurationError):
        PollingConfigManager(start=False, **options)


def test_interval_and_timeout_limits_follow_optimizely(managers):
    logger = CapturingLogger()
    manager = PollingConfigManager(
        sdk_key="k", update_interval=0, blocking_timeout=-1, start=False, logger=logger
    )
    managers.append(manager)
    assert manager.update_interval == DEFAULT_UPDATE_INTERVAL
    assert manager.blocking_timeout == DEFAULT_BLOCKING_TIMEOUT
    fast = PollingConfigManager(sdk_key="k", update_interval=5, start=False, logger=logger)
    managers.append(fast)
    assert fast.update_interval == 5
    assert "Polling intervals below 30 seconds are not recommended." in logger.at("warning")


def test_failing_update_listener_is_logged_and_polling_goes_on(server, managers):
    logger = CapturingLogger()

    def explode(config: ProjectConfig) -> None:
        raise RuntimeError("boom")

    manager = poller(managers, server.url, update_interval=0.05, on_update=explode, logger=logger)
    assert manager.get_config() is not None
    assert "Config update listener failed: RuntimeError: boom" in logger.at("error")
    count = len(server.requests)
    assert server.wait_for_requests(count + 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_keeps_the_config_and_polls_on_its_own(server, managers):
    manager = poller(managers, server.url, update_interval=300)
    assert manager.get_config().revision == "1"  # type: ignore[union-attr]
    server.set_datafile(revision(3), 1_700_000_300)  # the parent will not poll again for 300 s
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            first = manager.get_config()
            deadline = time.monotonic() + 10
            latest = first
            while latest is not None and latest.revision != "3" and time.monotonic() < deadline:
                manager._first_round.wait(
                    0.05
                )  # an Event wait, bounded: the child's own poller swaps the config
                latest = manager.get_config()
            os.write(
                write_end,
                f"{first.revision if first else None},{latest.revision if latest else None}".encode(),
            )
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 15)
        assert ready, "child did not answer"
        assert os.read(read_end, 100).decode() == "1,3"
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert manager.get_config().revision == "1"  # type: ignore[union-attr]


def test_static_manager_logs_one_line_for_an_invalid_datafile():
    logger = CapturingLogger()
    manager = StaticConfigManager('{"version": "4"}', logger=logger)
    assert manager.get_config() is None
    assert logger.at("error") == [
        "Provided datafile is invalid: projectId: missing required field (and 7 more problems)."
    ]


def test_static_manager_fires_on_update_for_its_config():
    updates = Updates()
    manager = StaticConfigManager(revision(4), on_update=updates)
    assert manager.get_config().revision == "4"  # type: ignore[union-attr]
    assert updates.seen == ["4"]
    manager.stop()


def test_static_manager_skip_json_validation_still_rejects_unreadable_datafiles():
    logger = CapturingLogger()
    bad = revision(1)
    bad["experiments"] = [{"id": "1"}]
    assert StaticConfigManager(bad, skip_json_validation=True, logger=logger).get_config() is None
    assert len(logger.at("error")) == 1
