"""The mflag-compatible option parser (shared/spec/cli.md 2.2-2.4)."""

from __future__ import annotations

import pytest

from cs_core.cli.main import GLOBAL_FLAGS, HELP_FLAG
from cs_core.cli.parser import Flag, FlagError, FlagSet, HelpRequested, go_list, parse_bool

COMMAND_FLAGS = (
    Flag("json", ("json",), ("j",), "bool"),
    Flag("quiet", ("quiet",), ("q",), "bool"),
    Flag("tree", ("tree",), ("t",), "bool"),
    Flag("name", ("name",), ("n",), "list"),
    Flag("id", ("id",), ("i",), "string"),
    Flag("read_only", ("read-only", "ro"), ("r",), "bool"),
)


def phase1() -> FlagSet:
    return FlagSet((*GLOBAL_FLAGS, HELP_FLAG), help_flags=True)


def phase2() -> FlagSet:
    return FlagSet((*GLOBAL_FLAGS, *COMMAND_FLAGS), help_flags=True)


def test_long_options_with_one_or_two_dashes_for_letters() -> None:
    result = phase1().parse(["--graph", "/g", "-R", "/r", "-s=vfs", "--storage-opt=a=b", "layers", "-x"])
    assert result.values["graph"] == "/g"
    assert result.values["run"] == "/r"
    assert result.values["storage_driver"] == "vfs"
    assert result.values["storage_opt"] == ["a=b"]
    assert result.args == ["layers", "-x"]
    assert result.given == {"graph", "run", "storage_driver", "storage_opt"}


def test_quoted_values_are_stripped() -> None:
    result = phase2().parse(['--graph="/a b"', "--id='x'", "-j=\"true\""])
    assert result.values["graph"] == "/a b"
    assert result.values["id"] == "x"
    assert result.values["json"] is True


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_true_spellings(text: str) -> None:
    assert phase2().parse([f"--json={text}"]).values["json"] is True
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_false_spellings(text: str) -> None:
    assert phase2().parse(["--json", f"--json={text}"]).values["json"] is False


def test_boolean_never_consumes_next_argument() -> None:
    result = phase2().parse(["--json", "false"])
    assert result.values["json"] is True
    assert result.args == ["false"]


def test_bad_boolean_message() -> None:
    with pytest.raises(FlagError) as info:
        phase2().parse(["--json=x"])
    assert info.value.message == 'invalid boolean value "x" for  --json: strconv.ParseBool: parsing "x": invalid syntax'


def test_letter_groups() -> None:
    result = phase2().parse(["-qj", "-t"])
    assert result.values["json"] and result.values["quiet"] and result.values["tree"]


def test_letter_group_with_value_letter_takes_next_argument() -> None:
    result = phase1().parse(["-Dg", "/g", "status"])
    assert result.values["debug"] is True
    assert result.values["graph"] == "/g"
    assert result.args == ["status"]


def test_unknown_letter_rejects_whole_group() -> None:
    with pytest.raises(FlagError) as info:
        phase1().parse(["-qj"])
    assert info.value.message == "flag provided but not defined: -qj"


def test_single_dash_long_name_is_rejected() -> None:
    with pytest.raises(FlagError) as info:
        phase2().parse(["-json"])
    assert info.value.message == "flag provided but not defined: -json"


def test_double_dash_letter_and_triple_dash_are_undefined() -> None:
    for arg in ("--j", "---json"):
        with pytest.raises(FlagError) as info:
            phase2().parse([arg])
        assert info.value.message == f"flag provided but not defined: {arg}"


def test_undefined_with_value_is_named_without_value() -> None:
    with pytest.raises(FlagError) as info:
        phase2().parse(["--bogus=1"])
    assert info.value.message == "flag provided but not defined: --bogus"


def test_missing_value() -> None:
    with pytest.raises(FlagError) as info:
        phase2().parse(["-s"])
    assert info.value.message == "flag needs an argument: -s"
    with pytest.raises(FlagError) as info:
        phase1().parse(["--graph"])
    assert info.value.message == "flag needs an argument: --graph"


def test_string_value_may_look_like_an_option() -> None:
    assert phase2().parse(["--id", "--json"]).values == {**phase2().parse([]).values, "id": "--json"}


def test_lists_append_and_strings_override() -> None:
    result = phase2().parse(["-n", "a", "--name", "b", "--name=a", "--graph", "A", "--graph", "B"])
    assert result.values["name"] == ["a", "b", "a"]
    assert result.values["graph"] == "B"


def test_phase_two_continues_from_phase_one_values() -> None:
    first = phase1().parse(["--graph", "A", "--storage-opt", "x=1", "layers"])
    second = phase2().parse(["--graph", "B", "--storage-opt", "y=2"], {k: v for k, v in first.values.items() if k != "help"})
    assert second.values["graph"] == "B"
    assert second.values["storage_opt"] == ["x=1", "y=2"]


def test_parsing_stops_at_first_positional() -> None:
    result = phase2().parse(["-n", "x", "NAME", "--json"])
    assert result.values["json"] is False
    assert result.args == ["NAME", "--json"]


def test_double_dash_is_consumed_and_lone_dash_is_positional() -> None:
    assert phase2().parse(["--", "--json"]).args == ["--json"]
    assert phase2().parse(["-", "--json"]).args == ["-", "--json"]


def test_aliases_of_one_option() -> None:
    for spelling in ("--read-only", "--ro", "-r"):
        assert phase2().parse([spelling]).values["read_only"] is True


def test_help_spellings() -> None:
    assert phase1().parse(["--help"]).values["help"] is True
    assert phase1().parse(["--help=false"]).values["help"] is False
    deprecated = phase1().parse(["-help"])
    assert deprecated.values["help"] is True and deprecated.deprecated_used == ["-help"]
    with pytest.raises(HelpRequested):
        phase1().parse(["-h"])
    for spelling in ("--help", "-help", "-h"):
        with pytest.raises(HelpRequested):
            phase2().parse([spelling])


def test_option_table_is_sorted_and_aligned() -> None:
    table = FlagSet(COMMAND_FLAGS[:2] + (Flag("opt", ("storage-opt",), (), "list", [], "Opts"),)).format_table()
    lines = table.splitlines()
    assert lines[0] == ""
    assert [line.split()[0] for line in lines[1:]] == ["--json,", "--quiet,", "--storage-opt=[]"]
    columns = {line.index(line.split()[-1]) for line in lines[1:] if line.split()[-1] == "Opts"}
    assert columns == {len("  --storage-opt=[]") + 4}


def test_go_list() -> None:
    assert go_list([]) == "[]"
    assert go_list([0, 1000]) == "[0 1000]"
    assert go_list(["a", "b", "c"]) == "[a b c]"
