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


# --- the one grammar (docs/development.md, CLI grammar; d2m_bench/cli/grammar.py) ------------

# Commands whose whole job is to write one folder may take it as their argument OUT.
POSITIONAL_OUT = {("demo", "make"), ("data", "synth", "aistpp"), ("data", "synth", "tiktok")}


def _grammar_problems(path, cmd):
    """Every way ``cmd`` breaks the grammar, as readable lines (empty: it follows it)."""
    from d2m_bench.cli.grammar import WORKERS_HELP
    from d2m_bench.parallel import workers_option

    where = " ".join(("d2m-bench", *path))
    problems = []
    opts = [p for p in cmd.params if isinstance(p, click.Option)]
    for p in opts:
        names = set(p.opts)
        if "--workers" in names or "-j" in names:
            if names != {"--workers", "-j"}:
                problems.append(f"{where}: workers option spelled {sorted(names)}, not -j/--workers")
            if p.default is not None or p.callback is not workers_option or WORKERS_HELP not in (p.help or ""):
                problems.append(f"{where}: -j/--workers without the one default ({WORKERS_HELP})")
        if "--out" in names and not p.hidden and isinstance(p.type, click.Path) and not p.type.file_okay:
            problems.append(f"{where}: --out names a folder; folders are --out-dir")
        if "--out-dir" in names and not (isinstance(p.type, click.Path) and not p.type.file_okay):
            problems.append(f"{where}: --out-dir accepts a file")
        if "--out-dir" in names and not any("--out" in q.opts and q.hidden for q in opts) and path != ("mos", "aggregate"):
            problems.append(f"{where}: --out-dir without the deprecated --out spelling")
    for a in (p for p in cmd.params if isinstance(p, click.Argument)):
        if isinstance(a.type, click.Choice):
            problems.append(f"{where}: argument {a.human_readable_name} is a fixed set of kinds: make them subcommands")
        if a.name == "out" and path not in POSITIONAL_OUT:
            problems.append(f"{where}: output folder as an argument; use --out-dir")
    if isinstance(cmd, click.Group):
        group_opts = [p for p in opts if not p.hidden and p.name not in ("help", "version")]
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            for g in group_opts:
                if not any(set(g.opts) <= set(q.opts) for q in sub.params if isinstance(q, click.Option)):
                    problems.append(f"{where} {name}: the group option {g.opts[0]} is not accepted here")
    return problems


def test_every_command_follows_the_one_grammar():
    problems = [line for path, cmd in COMMANDS.items() for line in _grammar_problems(path, cmd)]
    assert problems == [], "\n".join(problems)


def test_the_grammar_check_finds_each_kind_of_break():
    """The checker on commands built here, one break each."""
    @click.group()
    @click.option("--root", help="r")
    def grp(root):
        """g"""

    @grp.command("sub")
    @click.argument("kind", type=click.Choice(["a", "b"]))
    @click.argument("out")
    @click.option("--workers", type=int, default=2, help="w")
    @click.option("--out", type=click.Path(file_okay=False), help="o")
    def sub(kind, out, workers):
        """s"""

    found = "\n".join(_grammar_problems(("x",), grp) + _grammar_problems(("x", "sub"), sub))
    for needle in ("group option --root is not accepted", "not -j/--workers", "without the one default",
                   "--out names a folder", "make them subcommands", "use --out-dir"):
        assert needle in found, (needle, found)


def test_old_folder_spelling_works_with_one_deprecation_line(tmp_path, capsys):
    # the command runs with --out as --out-dir (here to its own one-line error about the input)
    code, out, err = _run(capsys, "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                          "--out", str(tmp_path / "cmp"))
    lines = err.splitlines()
    assert lines[0] == "d2m-bench compare: warning: --out is deprecated for a folder; use --out-dir"
    assert code == 2 and len(lines) == 2 and "a.json: no such result file" in lines[1]
    code, out, err = _run(capsys, "compare", "a.json", "b.json", "--out", "x", "--out-dir", "y")
    assert code == 2 and "give --out-dir only" in err
    code, out, err = _run(capsys, "mos", "aggregate", str(tmp_path / "none.csv"), "--out", str(tmp_path / "m"))
    assert err.splitlines()[0] == "d2m-bench mos aggregate: warning: --out for a folder is deprecated; use --out-dir"
    code, out, err = _run(capsys, "cache", "info", "--root", str(tmp_path / "c"))  # a group option after the subcommand
    assert code == 0 and f"cache root: {tmp_path / 'c'}" in out
    code, out, err = _run(capsys, "data", "synth", "tiktok", str(tmp_path / "raw"))  # a kind is a subcommand
    assert code == 0 and "--out-dir DIR" in out, err


@pytest.mark.parametrize("args, fix", [
    (("eval", "--pred", "p", "--gt", "g", "-p", "d2m-aistpp-2sx"), "did you mean 'd2m-aistpp-2s'"),
    # the genre section is off under loris: the name is still checked
    (("eval", "--pred", "p", "--gt", "g", "-p", "loris", "--embedder", "vgish"), "did you mean 'vggish'"),
    (("eval", "--pred", "p", "--gt", "g", "--weights", "panns-cnn4=x.pth"), "did you mean 'panns-cnn14'"),
    (("baseline", "run", "dance2musc", "--data", "d", "--out-dir", "o"), "did you mean 'dance2music'"),
    (("cite", "-p", "tolerence"), "did you mean 'tolerance'"),
])
def test_unknown_names_get_did_you_mean(args, fix, capsys):
    code, out, err = _run(capsys, *args)
    assert code == 2 and len(err.splitlines()) == 1 and fix in err, err
