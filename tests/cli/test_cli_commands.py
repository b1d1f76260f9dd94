"""`flagstream version / validate / decide`: exit codes, paths in errors, decisions like optimizely-sdk's."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from optimizely import optimizely
from optimizely.logger import SimpleLogger

from flagstream._version import __version__
from flagstream.cli import main, parse_attribute
from flagstream.demo import demo_datafile


@pytest.fixture
def datafile(tmp_path: Path) -> Path:
    path = tmp_path / "shop.json"
    path.write_text(demo_datafile())
    return path


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"flagstream {__version__}, ")
    assert " build (Python " in out


def test_validate_accepts_the_bundled_datafile(datafile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(datafile)]) == 0
    out = capsys.readouterr().out
    assert "valid (version 4, revision 73" in out
    assert "5 flags" in out


def test_validate_prints_every_error_with_its_json_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = json.loads(demo_datafile())
    broken["experiments"][0]["trafficAllocation"][0]["endOfRange"] = "5000"
    del broken["featureFlags"][1]["key"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert any("experiments[0].trafficAllocation[0].endOfRange" in line for line in lines)
    assert any("featureFlags[1].key" in line for line in lines)
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert f"{len(lines)} problems" in captured.err


def test_validate_reports_a_syntax_error_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{"version": "4",\n  "accountId": ')
    assert main(["validate", str(path)]) == 1
    assert "line 2" in capsys.readouterr().out


def test_validate_rejects_an_unsupported_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(demo_datafile())
    doc["version"] = "5"
    path = tmp_path / "v5.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", str(path)]) == 1
    assert "version" in capsys.readouterr().out


def test_validate_of_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


ATTRS = {
    "country": "DE",
    "device": "mobile",
    "is_member": True,
    "cart_value": 75.5,
    "visits": 9,
    "app_version": "3.2.4",
}


@pytest.mark.parametrize("user", ["alice", "bob", "shopper-000042", "zoe"])
def test_decide_matches_optimizely_sdk(datafile: Path, capsys: pytest.CaptureFixture[str], user: str) -> None:
    args = ["decide", "--datafile", str(datafile), "--user", user, "--json"]
    for key, value in ATTRS.items():
        args += ["--attr", f"{key}={json.dumps(value) if isinstance(value, bool) else value}"]
    assert main(args) == 0
    ours = json.loads(capsys.readouterr().out)
    assert ours["attributes"] == ATTRS
    sdk = optimizely.Optimizely(demo_datafile(), logger=SimpleLogger(min_level=logging.CRITICAL))
    try:
        expected = sdk.create_user_context(user, ATTRS).decide_all(["DISABLE_DECISION_EVENT"])
    finally:
        sdk.close()
    got = {d["flag_key"]: d for d in ours["decisions"]}
    assert set(got) == set(expected)
    for key, decision in expected.items():
        assert (got[key]["variation_key"], got[key]["enabled"], got[key]["rule_key"]) == (
            decision.variation_key,
            decision.enabled,
            decision.rule_key,
        ), key
        assert got[key]["variables"] == decision.variables, key


def test_decide_prints_a_table_for_chosen_flags(datafile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["decide", "--datafile", str(datafile), "--user", "u1", "--flag", "checkout_flow", "--reasons"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "checkout_flow" in out
    assert "recommendations" not in out.split("Decisions", 1)[1].split("\n\n")[0]


def test_decide_refuses_an_invalid_datafile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"version": "4"}')
    assert main(["decide", "--datafile", str(path), "--user", "u"]) == 1
    assert "projectId" in capsys.readouterr().err


def test_attribute_values_are_typed() -> None:
    assert parse_attribute("a=true") == ("a", True)
    assert parse_attribute("a=false") == ("a", False)
    assert parse_attribute("a=12") == ("a", 12)
    assert parse_attribute("a=1.5") == ("a", 1.5)
    assert parse_attribute("a=DE") == ("a", "DE")
    assert parse_attribute('a="12"') == ("a", "12")
    assert parse_attribute("a=x=y") == ("a", "x=y")
    assert parse_attribute("a=") == ("a", "")


def test_attribute_without_equals_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["decide", "--datafile", "x", "--user", "u", "--attr", "novalue"])
    assert exit_info.value.code == 2
    assert "key=value" in capsys.readouterr().err


@given(
    st.text(alphabet=st.characters(blacklist_characters="="), min_size=1, max_size=8), st.text(max_size=12)
)
def test_any_key_value_parses_back_to_its_key(key: str, value: str) -> None:
    parsed_key, parsed = parse_attribute(f"{key}={value}")
    assert parsed_key == key
    assert isinstance(parsed, (str, int, float, bool))
