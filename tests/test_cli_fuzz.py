"""Every numeric option of every command, found in the app itself (a new option is covered without listing it), given
NaN, inf, -inf, 0, -1 and 1e12: exit 0, or exit 2 with one line on stderr naming the option; never a traceback, and
never a value outside the option's declared range reaching the command.

The commands' bodies are replaced by a stub for this: a value a command accepts would start real work (a sweep, a
disk probe, the lab's server), and the ranges are checked as the command line is read, before any work, so the stub
sees exactly what the command would. `gravity` and `--assume` run for real as well: with the drive rate given they
compute, and measure nothing.
"""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path

import pytest
import typer

from feedtax.cli import app
from feedtax.cli.options import Range

VALUES = ("nan", "inf", "-inf", "0", "-1", "1e12")
PER_CALL_S = 10  # a fuzzed command line: parsing, or gravity's arithmetic
ASSUMPTIONS = json.loads((Path(__file__).parents[1] / "harness" / "model" / "assumptions.json").read_text())


def _commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _is_numeric(annotation) -> bool:
    return annotation in (int, float) or any(_is_numeric(a) for a in typing.get_args(annotation))


def _declared(param) -> tuple[float | None, float | None] | None:
    """The range a numeric option declares, (lo, hi): a cli.options.Range as its parser, or typer's min/max; None for
    an option that is not a number."""
    info = param.type_descriptor.parameter_info
    if isinstance(info.parser, Range):
        return info.parser.lo, info.parser.hi
    if _is_numeric(param.type_descriptor.annotation):
        return info.min, info.max
    return None


def _stubbed():
    """The app's click command with every command's body replaced by a stub that records what it was given, and
    the numeric options: (path, command, option name, param, (lo, hi))."""
    root = typer.main.get_command(app)
    calls: list[dict] = []
    cases = []
    for path, command in _commands(root):
        command.callback = lambda **kw: calls.append(kw)
        for param in command.params:
            if param.param_type_name == "option" and (declared := _declared(param)) is not None:
                cases.append((path, command, max(param.opts, key=len), param, declared))
    return root, calls, cases


ROOT, CALLS, CASES = _stubbed()


def _arguments(command) -> list[str]:
    """A placeholder for each required argument (the stub never opens it)."""
    return ["x.json" for p in command.params if p.param_type_name == "argument" and p.required]


def _flat(value) -> list:
    if isinstance(value, list | tuple):
        return [x for v in value for x in _flat(v)]
    return [value]


def test_every_command_has_numeric_options_found():
    found = {" ".join(path) for path, *_ in CASES}
    assert {"sweep", "gravity", "probe disk", "probe memory", "probe energy", "lab"} <= found, found


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{' '.join(c[0])} {c[2]}")
def test_every_numeric_option_has_a_range_in_its_help(case):
    path, command, option, param, (lo, hi) = case
    assert lo is not None and hi is not None, f"feedtax {' '.join(path)} {option} declares no range"
    info = param.type_descriptor.parameter_info
    if isinstance(info.parser, Range):
        assert f"Range: {info.parser}" in (param.help or ""), param.help


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{' '.join(c[0])} {c[2]}")
def test_a_number_out_of_range_is_one_line_and_exit_2(feedtax_cli, case, value):
    path, command, option, _, (lo, hi) = case
    CALLS.clear()
    ran = feedtax_cli(*path, *_arguments(command), f"{option}={value}", command=ROOT, timeout_s=PER_CALL_S)
    assert "Traceback" not in ran.output
    assert ran.exit_code in (0, 2), ran.output
    if ran.exit_code == 2:
        assert not CALLS, "refused before the command starts"
        assert ran.stderr.count("\n") == 1 and ran.stderr.startswith(f"feedtax: {option}: "), ran.stderr
        return
    (given,) = CALLS  # accepted: what reached the command is a finite number within the declared range
    numbers = _flat(given[param_name(case)])
    assert numbers and all(math.isfinite(x) and (lo is None or x >= lo) and (hi is None or x <= hi)
                           for x in numbers), (option, value, numbers)


def param_name(case) -> str:
    return case[3].name


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("option", ["--distance-km", "--link-gbps", "--disk-mb-per-s", "--size"])
def test_gravity_for_real(feedtax_cli, option, value):
    """gravity's body run: accepted values compute (the drive rate is given, so nothing is measured)."""
    given = [] if option == "--disk-mb-per-s" else ["--disk-mb-per-s", "100"]
    ran = feedtax_cli("gravity", *given, *([] if option == "--size" else ["--size", "1TB"]), f"{option}={value}",
                      timeout_s=PER_CALL_S)
    assert "Traceback" not in ran.output and ran.exit_code in (0, 2), ran.output
    assert ran.exit_code == 0 or ran.stderr.count("\n") == 1, ran.stderr


@pytest.mark.parametrize("value", VALUES)
def test_every_assumption_through_gravity(feedtax_cli, value):
    """`--assume key=value` for every assumption: exit 0, or one line naming the key and its range."""
    for key in (k for k in ASSUMPTIONS if not k.startswith("_")):
        ran = feedtax_cli("gravity", "--size", "1TB", "--disk-mb-per-s", "100", "--json", "--assume",
                          f"{key}={value}", timeout_s=PER_CALL_S)
        assert "Traceback" not in ran.output and ran.exit_code in (0, 2), (key, ran.output)
        if ran.exit_code == 2:
            assert ran.stderr.count("\n") == 1 and f"--assume {key}=" in ran.stderr, ran.stderr
        else:
            doc = json.loads(ran.stdout)
            assert all(math.isfinite(t[k]) and t[k] >= 0 for t in doc["tiers"]
                       for k in ("network_s", "sneakernet_s", "write_s", "read_s", "ship_s")), (key, value)


@pytest.mark.parametrize("key", ["truck_speed_km_per_h", "drive_capacity_bytes", "sneakernet_parallel_drives",
                                 "link_efficiency", "glasses_battery_life_h"])
def test_a_divisor_of_zero_is_refused(feedtax_cli, key):
    ran = feedtax_cli("gravity", "--size", "1TB", "--disk-mb-per-s", "100", "--assume", f"{key}=0")
    assert ran.exit_code == 2 and ran.stderr == f"feedtax: --assume {key}=0: outside its range, over 0, up to " \
                                                f"{1 if key == 'link_efficiency' else 1e18:g}\n"


@pytest.mark.parametrize("args, line", [
    (["sweep", "--bogus"], "feedtax: no such option: --bogus"),
    (["sweep", "--steps"], "feedtax: option '--steps' requires an argument"),
    (["report"], "feedtax: missing argument"),
    (["nonesuch"], "feedtax: no such command 'nonesuch'"),
    (["sweep", "--steps", "1000000000"], "feedtax: --steps: 1000000000 is over the limit 100000 (use 1..100000)"),
    (["probe", "memory", "--threads", "x"], "feedtax: --threads: 'x' is not a whole number"),
])
def test_usage_errors_are_one_line(feedtax_cli, args, line):
    ran = feedtax_cli(*args)
    assert ran.exit_code == 2 and ran.stderr.startswith(line) and ran.stderr.count("\n") == 1, ran.stderr
    assert ran.stdout == ""


def test_no_command_shows_the_help(feedtax_cli):
    ran = feedtax_cli()
    assert ran.exit_code == 2 and "Usage: feedtax" in ran.output and "sweep" in ran.output


def test_a_range_checks_each_listed_value():
    workers = Range(0, 8, whole=True, listed=True)
    assert workers("4,0,4, 2") == [4, 0, 2]
    for bad, why in (("1,x", "'x' is not a whole number"), (",", "holds no value"), ("9", "over the limit 8"),
                     ("1.5", "not a whole number")):
        with pytest.raises(typer.BadParameter, match=why):
            workers(bad)
    rate = Range(0, 1e6, above=True)
    assert str(rate) == "over 0, up to 1000000" and rate("1e-9") == 1e-9
    for bad, why in (("0", "0 is not over 0"), ("nan", "not a finite"), ("-inf", "not a finite"), ("2e6", "over")):
        with pytest.raises(typer.BadParameter, match=why):
            rate(bad)
    size = Range(1 << 20, 1 << 40, size=True)
    assert str(size) == "1 MiB..1 TiB" and size("1G") == 1 << 30
    with pytest.raises(typer.BadParameter, match="under the limit 1 MiB"):
        size("1K")
