"""``PollingConfigManager``: fetch the datafile for an SDK key, in the background, forever.

One daemon thread fetches the datafile, then waits ``update_interval`` seconds
on an ``Event`` that :meth:`~PollingConfigManager.stop` sets, so stopping never
waits for the interval. Each request has a connect and a read timeout, retries
(connection errors, 500, 502, 503, 504) wait on the same event, and a body is
read in chunks with the stop flag checked between them.

``get_config()`` never touches the network. Before the first datafile has
arrived it waits, at most until ``blocking_timeout`` seconds after the manager
was created (for all callers together, not per call), or until the first fetch
round has finished, whichever comes first; after that it returns at once.

A new revision replaces the config and calls ``on_update(config)`` (on the
polling thread). A datafile
the server sends that cannot be used (HTTP error, garbage, invalid, unsupported
version) is logged in one line and the previous config is kept. ``If-Modified-
Since`` is sent with the ``Last-Modified`` of the last datafile that was used.

Fork safety: the config is an immutable value, so a forked child keeps using
it. The polling thread does not survive ``fork()``; the child's manager notices
on its next ``get_config()`` and starts its own thread with a fresh connection
pool (the parent's sockets are never reused). A manager stopped before the fork
stays stopped.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Final

import urllib3

from flagstream._logging import get_logger
from flagstream._version import __version__
from flagstream.config.managers import Datafile, OnUpdate, describe_error, load_config, notify
from flagstream.config.project_config import ProjectConfig
from flagstream.errors import ConfigurationError, InvalidDatafileError

__all__ = [
    "AUTHENTICATED_DATAFILE_URL_TEMPLATE",
    "DATAFILE_URL_TEMPLATE",
    "DEFAULT_BLOCKING_TIMEOUT",
    "DEFAULT_UPDATE_INTERVAL",
    "PollingConfigManager",
]

DATAFILE_URL_TEMPLATE: Final = "https://cdn.optimizely.com/datafiles/{sdk_key}.json"
AUTHENTICATED_DATAFILE_URL_TEMPLATE: Final = "https://config.optimizely.com/datafiles/auth/{sdk_key}.json"
DEFAULT_UPDATE_INTERVAL: Final = 300.0
DEFAULT_BLOCKING_TIMEOUT: Final = 10.0
REQUEST_TIMEOUT: Final = 10.0
MIN_RECOMMENDED_INTERVAL: Final = 30.0
MAX_DATAFILE_BYTES: Final = 64 * 1024 * 1024
_RETRY_STATUSES: Final = frozenset((500, 502, 503, 504))
_RETRIES: Final = 3
_BACKOFF: Final = 0.1
_CHUNK: Final = 64 * 1024

_LIVE: weakref.WeakSet[PollingConfigManager] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for manager in list(_LIVE):
        manager._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _seconds(name: str, value: object, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f'Invalid {name} "{value}" provided.')
    return float(value)


class PollingConfigManager:
    """Keeps the config of one SDK key (or URL) fresh by polling.

    Options follow optimizely-sdk's ``PollingConfigManager``; an access token
    selects the authenticated URL template and is sent as a bearer token, as
    its ``AuthDatafilePollingConfigManager`` does.

    >>> manager = PollingConfigManager(url="http://127.0.0.1:9/datafile.json", blocking_timeout=0,
    ...                                start=False)
    >>> manager.datafile_url
    'http://127.0.0.1:9/datafile.json'
    """

    def __init__(
        self,
        sdk_key: str | None = None,
        datafile: Datafile | None = None,
        url: str | None = None,
        url_template: str | None = None,
        update_interval: float | None = DEFAULT_UPDATE_INTERVAL,
        blocking_timeout: float | None = DEFAULT_BLOCKING_TIMEOUT,
        datafile_access_token: str | None = None,
        logger: object | None = None,
        on_update: OnUpdate | None = None,
        skip_json_validation: bool = False,
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        start: bool = True,
    ) -> None:
        self._logger = get_logger(logger)
        self._on_update = on_update
        self._skip_json_validation = skip_json_validation
        self._config: ProjectConfig | None = None
        if datafile is not None:
            self._config = load_config(
                datafile, skip_json_validation=skip_json_validation, logger=self._logger
            )
        self.sdk_key = sdk_key or (self._config.sdk_key if self._config is not None else None)
        if datafile_access_token is not None and not datafile_access_token:
            raise ConfigurationError("datafile_access_token cannot be empty.")
        self._access_token = datafile_access_token
        template = url_template or (
            AUTHENTICATED_DATAFILE_URL_TEMPLATE if datafile_access_token else DATAFILE_URL_TEMPLATE
        )
        self.datafile_url = self._datafile_url(self.sdk_key, url, template)
        self.update_interval = self._interval(update_interval)
        self.blocking_timeout = _seconds("blocking timeout", blocking_timeout, DEFAULT_BLOCKING_TIMEOUT)
        if self.blocking_timeout < 0:
            self.blocking_timeout = DEFAULT_BLOCKING_TIMEOUT
        self.request_timeout = _seconds("request_timeout", request_timeout, REQUEST_TIMEOUT)
        if self.request_timeout <= 0:
            raise ConfigurationError(f'Invalid request_timeout "{request_timeout}" provided.')
        self.last_modified: str | None = None
        #: ``time.monotonic()`` when a polling round last got a usable answer (a datafile or 304).
        self.fetched_at: float | None = None
        self._ready_by = time.monotonic() + self.blocking_timeout
        self._init_runtime()
        if self._config is not None:
            self._first_round.set()
            notify(self._on_update, self._config, self._logger)
        _LIVE.add(self)
        if start:
            self.start()

    # -- options -------------------------------------------------------------------

    @staticmethod
    def _datafile_url(sdk_key: str | None, url: str | None, template: str) -> str:
        if url is not None:
            return url
        if sdk_key is None:
            raise ConfigurationError("Must provide at least one of sdk_key or url.")
        try:
            return template.format(sdk_key=sdk_key)
        except (AttributeError, KeyError, IndexError, ValueError):
            raise ConfigurationError(f"Invalid url_template {template} provided.") from None

    def _interval(self, value: float | None) -> float:
        interval = _seconds("update_interval", value, DEFAULT_UPDATE_INTERVAL)
        if interval <= 0:
            self._logger.debug(
                f"update_interval value {value} too small. Defaulting to {DEFAULT_UPDATE_INTERVAL:g}"
            )
            interval = DEFAULT_UPDATE_INTERVAL
        if interval < MIN_RECOMMENDED_INTERVAL:
            self._logger.warning("Polling intervals below 30 seconds are not recommended.")
        return interval

    def _init_runtime(self) -> None:
        """Everything that must be fresh in a new process: events, lock, pool, thread."""
        self._stopped = threading.Event()
        self._first_round = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._needs_restart = False
        self._pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=1,
            timeout=urllib3.Timeout(connect=self.request_timeout, read=self.request_timeout),
            # Follow redirects; retries are ours (their waits must be interruptible by stop()).
            retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5),
        )

    # -- public --------------------------------------------------------------------

    def get_config(self) -> ProjectConfig | None:
        """The current config; waits only for the first datafile, and only until the deadline."""
        if self._needs_restart:
            self._restart_after_fork()
        config = self._config
        if config is not None:
            return config
        if not self._first_round.is_set():
            remaining = self._ready_by - time.monotonic()
            if remaining > 0:
                self._first_round.wait(remaining)
        return self._config

    def start(self) -> None:
        """Start polling (done by the constructor unless ``start=False``)."""
        with self._lock:
            if self._stopped.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name="flagstream-datafile-poller", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop polling. Returns within ``timeout`` seconds; a request in flight ends
        by its own timeout in the (daemon) thread. ``get_config`` keeps answering."""
        self._stopped.set()
        self._first_round.set()  # nobody should wait for a datafile that will not come
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout))

    @property
    def is_running(self) -> bool:
        """Whether the polling thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a stopped poller's thread to end; ``True`` when it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.is_running

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._fetch_once()
            except Exception as exc:
                self._logger.error(f"Datafile polling round failed: {type(exc).__name__}: {exc}")
            self._first_round.set()
            if self._stopped.wait(self.update_interval):
                break
        self._pool.clear()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept-Encoding": "gzip, deflate", "User-Agent": f"flagstream/{__version__}"}
        if self._access_token:
            headers["Authorization"] = f"Bearer {self._access_token}"
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def _fetch_once(self) -> None:
        """One polling round: up to ``1 + _RETRIES`` attempts, waits interruptible by ``stop()``."""
        for attempt in range(_RETRIES + 1):
            if attempt and self._stopped.wait(_BACKOFF * 2 ** (attempt - 1)):
                return
            try:
                status, headers, body = self._get()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                if attempt == _RETRIES:
                    self._logger.error(f"Fetching datafile from {self.datafile_url} failed. Error: {failure}")
                continue
            if status in _RETRY_STATUSES and attempt < _RETRIES:
                continue
            self._handle(status, headers, body)
            return

    def _get(self) -> tuple[int, urllib3.HTTPHeaderDict, bytes | None]:
        response = self._pool.request(
            "GET", self.datafile_url, headers=self._headers(), preload_content=False, redirect=True
        )
        try:
            if response.status != 200:
                response.drain_conn()  # a connection with unread bytes must not go back to the pool
                return response.status, response.headers, None
            chunks: list[bytes] = []
            size = 0
            for chunk in response.stream(_CHUNK):
                if self._stopped.is_set():
                    raise urllib3.exceptions.HTTPError("stopped while reading the datafile")
                size += len(chunk)
                if size > MAX_DATAFILE_BYTES:
                    raise urllib3.exceptions.HTTPError(f"datafile larger than {MAX_DATAFILE_BYTES} bytes")
                chunks.append(chunk)
            return response.status, response.headers, b"".join(chunks)
        except BaseException:
            response.close()  # half read: drop the connection rather than reuse it
            raise
        finally:
            response.release_conn()

    def _handle(self, status: int, headers: urllib3.HTTPHeaderDict, body: bytes | None) -> None:
        if status == 304:
            self.fetched_at = time.monotonic()
            self._logger.debug(f"Not updating config as datafile has not updated since {self.last_modified}.")
            return
        if status != 200 or body is None:
            self._logger.error(f"Fetching datafile from {self.datafile_url} failed. Error: HTTP {status}")
            return
        try:
            config = ProjectConfig.from_datafile(
                body, skip_json_validation=self._skip_json_validation, logger=self._logger
            )
        except InvalidDatafileError as exc:
            kept = (
                f"keeping revision {self._config.revision}" if self._config is not None else "no config yet"
            )
            self._logger.error(f"{describe_error(exc, f'datafile from {self.datafile_url}')} ({kept})")
            return
        # Remember Last-Modified only for a datafile we use: a cut-off download must be fetched again.
        self.last_modified = headers.get("Last-Modified")
        self.fetched_at = time.monotonic()
        previous = self._config
        if previous is not None and previous.revision == config.revision:
            return
        self._config = config
        self._first_round.set()
        self._logger.debug(
            "Received new datafile and updated config. "
            f"Old revision number: {previous.revision if previous else None}. "
            f"New revision number: {config.revision}."
        )
        notify(self._on_update, config, self._logger)

    # -- fork ------------------------------------------------------------------------

    def _forked(self) -> None:
        """In a fork child: the thread is gone and the pool's sockets are the parent's."""
        was_stopped = self._stopped.is_set()
        self._pool.clear()  # closes this process's copies of the parent's sockets, nothing more
        self._init_runtime()
        if was_stopped:
            self._stopped.set()
            self._first_round.set()
        else:
            self._needs_restart = True
            if self._config is not None:
                self._first_round.set()

    def _restart_after_fork(self) -> None:
        self._needs_restart = False
        self._ready_by = time.monotonic() + self.blocking_timeout
        self.start()
