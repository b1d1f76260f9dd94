from __future__ import annotations

import subprocess
import sys
import uuid

from hypothesis import given
from hypothesis import strategies as st

from flagstream import _json
from flagstream.events.ids import format_uuid, uuid_json


@given(st.integers(0, 2**128 - 1))
def test_any_128_bits_format_as_a_canonical_version_4_uuid(bits):
    text = format_uuid(bits)
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122


@given(st.integers(0, 2**128 - 1))
def test_the_json_of_a_uuid_is_the_json_string_of_its_text(bits):
    assert uuid_json(bits) == _json.dumps(format_uuid(bits))


def test_uuid_text_passes_through():
    assert format_uuid("not-a-uuid") == "not-a-uuid"


FORK_SCRIPT = """
import os
from flagstream.events.ids import format_uuid, new_uuid_bits
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, format_uuid(new_uuid_bits(128)).encode())
    os._exit(0)
parent = format_uuid(new_uuid_bits(128))
child = os.read(read, 64).decode()
os.waitpid(pid, 0)
print(parent, child)
"""


def test_a_forked_child_draws_different_uuids_than_its_parent():
    # In a fresh interpreter: forking the test runner itself (threads alive) is not safe.
    result = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    parent, child = result.stdout.split()
    assert uuid.UUID(parent).version == uuid.UUID(child).version == 4
    assert parent != child
