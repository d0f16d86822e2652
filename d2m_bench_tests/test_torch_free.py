"""A core install without torch (issue 25 item 6): every command that needs it stops with one
line naming the extra to install and exit code 2, never a traceback; what needs no network
(weights list, the default protocol, fad/stats with mfcc-chroma) still runs. The wheel check
(.ci/wheel_check.sh) runs the same commands in a real torch-free venv."""
import pytest

from .conftest import run_cli, run_cli_without_torch


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchfree")
    assert run_cli("demo", "make", root / "demo").returncode == 0
    ids = sorted(p.stem for p in (root / "demo" / "gt").glob("*.wav"))
    (root / "labels.csv").write_text("id,genre\n" + "".join(f"{i},gBR\n" for i in ids))
    return root


@pytest.mark.parametrize("args,extra", [
    (["eval", "--pred", "{d}/demo/generated", "--gt", "{d}/demo/gt", "-p", "v2m-audio"], "d2m-bench[torch]"),
    (["eval", "--pred", "{d}/demo/generated", "--gt", "{d}/demo/gt", "--genre-db", "{d}/demo/gt",
      "--labels", "{d}/labels.csv"], "d2m-bench[torch]"),
    (["fad", "-b", "{d}/demo/gt", "--eval", "{d}/demo/generated"], "d2m-bench[torch]"),
    (["fad", "-b", "{d}/demo/gt", "--eval", "{d}/demo/generated", "-e", "panns-cnn14-16k"], "d2m-bench[torch,panns]"),
    (["stats", "{d}/demo/gt", "--out", "{d}/s.npz"], "d2m-bench[torch]"),
    (["fad", "-b", "{d}/demo/gt", "--eval", "{d}/demo/generated", "-e", "mfcc-chroma", "--device", "cuda"],
     "d2m-bench[torch]"),
])
def test_torch_needing_commands_say_one_line(demo, args, extra):
    proc = run_cli_without_torch(*[a.format(d=demo) for a in args])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs torch" in lines[0] and extra in lines[0], proc.stderr
    assert not (demo / "s.npz").exists()


def test_what_needs_no_torch_still_runs(demo):
    proc = run_cli_without_torch("weights", "list")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "torch/hub/checkpoints" in proc.stdout  # torch's folder, found without torch
    proc = run_cli_without_torch("fad", "-b", demo / "demo" / "gt", "--eval", demo / "demo" / "generated",
                                 "-e", "mfcc-chroma", "-q", "--kid-subsets", "5")
    assert proc.returncode == 0, proc.stderr
