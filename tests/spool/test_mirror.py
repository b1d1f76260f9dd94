"""The workers' in-memory mirror gives exactly the windows a disk read would give.

The same random run of appends, takes (with random event and byte bounds),
settlements and given-back windows is played twice: once with the mirror, once
with it switched off so that every window is read back from the segment files.
Both runs must hand out the same events in the same windows.
"""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.delivery.factories import context, conversion

from flagstream.delivery.spool import EventSpool
from flagstream.delivery.spool.mirror import Mirror, seq_span
from flagstream.events.user_event import ConversionEvent

CONTEXTS = [context(), context(revision="43")]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 1), st.integers(0, 3000)),
        st.tuples(st.just("take"), st.integers(1, 40), st.integers(1, 20_000)),
        st.tuples(st.just("settle"), st.booleans(), st.booleans()),
    ),
    max_size=200,
)


class _NeverMirror(Mirror):
    """Switched off for good: every window is read back from the segment files."""

    def __init__(self) -> None:
        super().__init__()
        self.stop()

    def restart(self) -> None:
        pass


def _event(which: int, padding: int) -> ConversionEvent:
    event = conversion(CONTEXTS[which])
    return event._replace(user_id=f"{event.user_id}-{'x' * padding}")


def _play(plan: list[tuple[object, ...]], events: list[ConversionEvent], *, mirrored: bool) -> list[object]:
    with tempfile.TemporaryDirectory() as directory:
        spool = EventSpool(directory, fsync="never", segment_bytes=16 * 1024, max_bytes=1 << 30)
        if not mirrored:
            spool._mirror = _NeverMirror()
        spool._keeper.stop()  # rotation and takes only: no background passes
        seen: list[object] = []
        open_windows = []
        made = iter(events)
        written = 0
        settled: set[int] = set()
        try:
            for step in plan:
                if step[0] == "append":
                    spool.append(next(made))  # rotates by itself without the keeper
                    written += 1
                elif step[0] == "take":
                    _, max_events, max_bytes = step
                    window = spool.take(max_events, max_bytes, 0.0, 1.0, True)
                    if window is not None:
                        seen.append([(e.seq, e.visitor) for e in window.events])
                        visitors = sum(len(e.visitor) for e in window.events)
                        assert len(window.events) <= max_events
                        assert len(window.events) == 1 or visitors <= max_bytes
                        open_windows.append(window)
                elif open_windows:
                    _, delivered, give_back = step
                    window = open_windows.pop(0)
                    keep = window.events if give_back else ()
                    spool.settle(window, len(window.events), delivered=delivered, keep=keep)
                    if not give_back:
                        settled.update(e.seq for e in window.events)
                    if give_back:
                        for segment in (*spool._own, *spool._backlog):
                            segment.not_before = 0.0
                # What flush() and the workers' wake-ups go by: every event written and not
                # settled, counted once, however often a given-back stretch is read again.
                assert spool.unsettled_own() == written - len(settled), step
            while True:  # everything left is read in the end, by either path
                window = spool.take(1000, 1 << 30, 0.0, 1.0, True)
                if window is None:
                    break
                seen.append([(e.seq, e.visitor) for e in window.events])
        finally:
            spool.close()
        return seen


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_the_mirror_hands_out_the_windows_a_disk_read_would(plan):
    events = [_event(step[1], step[2]) for step in plan if step[0] == "append"]  # type: ignore[arg-type]
    assert _play(plan, events, mirrored=True) == _play(plan, events, mirrored=False)


def test_a_mirrored_window_is_one_slice_and_its_sequence_numbers_one_range(tmp_path):
    spool = EventSpool(tmp_path, fsync="never")
    try:
        for _ in range(10):
            spool.append(conversion(CONTEXTS[0]))
        window = spool.take(4, 1 << 30, 0.0, 1.0, True)
        assert window is not None
        assert window.seqs == range(4) == seq_span(window.events)
        rest = spool.take(100, 1 << 30, 0.0, 1.0, True)
        assert rest is not None
        assert [e.seq for e in rest.events] == list(range(4, 10))
        assert spool._mirror.bytes == 0  # everything written was taken
    finally:
        spool.close()


def test_the_mirror_stops_when_full_and_restarts_once_the_workers_caught_up(tmp_path):
    spool = EventSpool(tmp_path, fsync="never")
    try:
        spool._mirror.stop()  # as the writer does past MIRROR_BYTES
        spool.append(conversion(CONTEXTS[0]))
        assert not spool._mirror.on
        assert not spool._mirror.runs
        window = spool.take(10, 1 << 30, 0.0, 1.0, True)  # from the disk; the workers caught up
        assert window is not None
        assert window.seqs is None
        assert spool._mirror.on
        spool.append(conversion(CONTEXTS[0]))
        again = spool.take(10, 1 << 30, 0.0, 1.0, True)
        assert again is not None
        assert again.seqs == range(1, 2)
    finally:
        spool.close()


def test_a_new_mirror_holds_nothing():
    mirror = Mirror()
    assert mirror.on
    assert mirror.bytes == 0
    assert not mirror.runs
