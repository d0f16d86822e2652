"""One CLI style (issue 11 item 7): walks every command the top-level group lists, so commands
added later are covered without touching this file."""

import io
import time

import click
import pytest

from d2m_bench import progress
from d2m_bench.cli import COMMANDS as TOP_LEVEL
from d2m_bench.cli import cli, main


def _walk(cmd, path):
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1] if path else "d2m-bench")
        for name in cmd.list_commands(ctx):
            yield from _walk(cmd.get_command(ctx, name), (*path, name))


COMMANDS = dict(_walk(cli, ()))
IDS = [" ".join(p) or "d2m-bench" for p in COMMANDS]


def _run(capsys, *args):
    """The real entry point in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def _options(cmd):
    return [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]


def test_the_walk_reaches_the_subcommands():
    assert {("eval",), ("protocols",), ("demo", "make"), ("data", "build", "aistpp"), ("mos", "aggregate")} \
        <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_every_option_has_help_text(path):
    cmd = COMMANDS[path]
    missing = [p.opts[0] for p in _options(cmd) if not (p.help or "").strip()]
    assert missing == [], f"{' '.join(path)}: options without help"
    assert first_line(cmd), f"{' '.join(path)}: no description"


def first_line(cmd):
    return (cmd.help or cmd.short_help or "").strip()


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_arguments_are_described_in_the_help(path):
    cmd = COMMANDS[path]
    for arg in (p for p in cmd.params if isinstance(p, click.Argument)):
        name = arg.human_readable_name
        assert name in (cmd.help or ""), f"{' '.join(path)}: argument {name} is not described"


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_help_marks_required_options_and_cuts_nothing(path, capsys):
    code, out, err = _run(capsys, *path, "--help")
    assert code == 0 and err == ""
    dense = "".join(out.split())  # click wraps long entries, also after a hyphen
    cmd = COMMANDS[path]
    ctx = click.Context(cmd, info_name=path[-1] if path else "d2m-bench")
    for opt in _options(cmd):
        if opt.required:
            names, text = opt.get_help_record(ctx)
            assert "[required]" in text and "".join(text.split()) in dense, f"{names} is required but not marked"
    if isinstance(cmd, click.Group):
        # click cuts a listed description at 45 characters with "...": each must appear whole.
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            full = TOP_LEVEL[name][2] if cmd is cli else cmd.get_command(ctx, name).get_short_help_str()
            assert "".join(full.split()) in dense, f"{name}'s description is cut in\n{out}"
            assert not full.endswith("..."), f"{name}'s description is cut: {full}"


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_short_options_for_quiet_and_protocol(path):
    for opt in _options(COMMANDS[path]):
        if "--quiet" in opt.opts:
            assert "-q" in opt.opts, f"{' '.join(path)}: --quiet without -q"
        if "--protocol" in opt.opts:
            assert "-p" in opt.opts, f"{' '.join(path)}: --protocol without -p"


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_a_usage_error_is_one_line_with_exit_2(path, capsys):
    code, out, err = _run(capsys, *path, "--no-such-option")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    prog = " ".join(("d2m-bench", *path))
    assert lines[0].startswith(f"{prog}: error: ") and "--no-such-option" in lines[0]
    assert lines[0].endswith(f"(see '{prog} --help')")


def test_a_missing_required_option_names_it_on_one_line(capsys):
    code, out, err = _run(capsys, "data", "build", "tiktok", "--out-dir", "x")
    assert code == 2 and len(err.splitlines()) == 1 and "'--videos'" in err


def test_the_old_spelling_of_demo_pairs_still_works(tmp_path, capsys):
    code, out, err = _run(capsys, "demo", "make", str(tmp_path / "d"), "--n", "2")
    assert code == 0, err
    assert len(list((tmp_path / "d" / "gt").glob("*.wav"))) == 2


def test_progress_in_a_log_is_plain_lines(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)
    log = io.StringIO()  # not a terminal
    for _ in progress.progress_bar(range(6), desc="events", unit="pair", file=log):
        time.sleep(0.03)
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert 1 < len(lines) <= 6  # periodic, not one per item
    assert all(line.startswith("events: ") for line in lines)
    assert lines[-1].startswith("events: 6/6 pair")


def test_progress_in_a_log_is_silent_for_short_runs():
    log = io.StringIO()
    for _ in progress.progress_bar(range(1000), desc="events", file=log):
        pass
    assert log.getvalue() == ""


def test_progress_on_a_terminal_redraws_in_place():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    for _ in progress.progress_bar(range(3), desc="events", file=tty, mininterval=0):
        pass
    assert "\r" in tty.getvalue()


def test_quiet_disables_the_bar():
    log = io.StringIO()
    for _ in progress.progress_bar(range(3), file=log, disable=True):
        pass
    assert log.getvalue() == ""


def test_the_eval_table_aligns_any_metric_name():
    from d2m_bench.protocol import load_protocol
    from d2m_bench.results.result import EvalResult

    long = "genre_retrieval_accuracy_with_a_metric_name_far_longer_than_any_column"
    summary = {"value": 0.5, "std": 0.25, "n": 12, "unit": "fraction"}
    result = EvalResult(protocol=load_protocol("d2m-aistpp-2s"), system=None, pairing_rule="stem", inputs={},
                        aggregate={"hit": dict(summary, value=0.125), long: summary, "fad": dict(summary, unit="distance",
                                                                                              value=3.25)},
                        excluded=[], per_clip=[])
    lines = result.table().splitlines()
    head = lines[1]
    rows = {line.split()[0]: line for line in lines[3:6]}
    end_of_mean = head.index("mean") + len("mean")
    # hand-formatted cells: fractions as percentages, other units with 4 significant digits
    for name, cell in (("hit", "12.5%"), (long, "50.0%"), ("fad", "3.25")):
        assert rows[name].index(cell) + len(cell) == end_of_mean, lines
    assert lines[2].startswith("-" * len(long) + " ")


def test_every_progress_bar_goes_through_the_helper():
    """A bare tqdm would bring the carriage-return redraws back into logs."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for folder in ("d2m_bench", "baselines") for p in (root / folder).rglob("*.py")
                 if p.name != "progress.py" and ("from tqdm" in p.read_text() or "import tqdm" in p.read_text())]
    assert offenders == []


GROUPS = [p for p, c in COMMANDS.items() if isinstance(c, click.Group)]


@pytest.mark.parametrize("path", GROUPS, ids=[" ".join(p) or "d2m-bench" for p in GROUPS])
def test_a_group_without_a_command_shows_its_help(path, capsys):
    code, out, err = _run(capsys, *path)
    assert code in (0, 2)  # click < 8.2 exits 0 here, later versions 2
    assert (out + err).startswith(f"Usage: {' '.join(('d2m-bench', *path))} [OPTIONS] COMMAND")
    assert "error:" not in out + err
