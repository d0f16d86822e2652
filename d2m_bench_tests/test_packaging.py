"""Packaging (issue 11 item 1): one import name, shipped data, no stray top-level packages.

The wheel is built from a copy of the working tree (tracked and untracked-but-not-ignored files),
so that a stale build/ folder in the checkout cannot put removed modules into it.
"""
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_dirs(top: Path, import_name: str) -> set:
    """Import names of every folder under `top` that holds Python source (a package folder)."""
    names = set()
    for d in [top, *sorted(p for p in top.rglob("*") if p.is_dir())]:
        if "__pycache__" in d.parts or not any(d.glob("*.py")):
            continue
        rel = d.relative_to(top).parts
        names.add(".".join((import_name, *rel)))
    return names


def test_package_list_names_every_package_folder():
    setuptools = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = _package_dirs(ROOT / "d2m_bench", "d2m_bench") | _package_dirs(ROOT / "baselines", "d2m_bench.baselines")
    assert on_disk - listed == set(), "package folders missing from [tool.setuptools] packages"
    # Data-only packages (folders without Python source) must still be real folders.
    mapped = setuptools["package-dir"]
    for name in listed - on_disk:
        folder = ROOT / mapped[name] if name in mapped else ROOT.joinpath(*name.split("."))
        assert folder.is_dir(), f"{name} is listed but has no folder"


def test_every_data_folder_is_a_listed_package():
    """setuptools warns "package would be ignored" (30 lines per install) for any folder inside a
    package that is not listed, data-only folders included."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    folders = {".".join(d.relative_to(ROOT).parts) for d in (ROOT / "d2m_bench").rglob("*")
               if d.is_dir() and "__pycache__" not in d.parts and any(f.is_file() for f in d.iterdir())}
    assert folders - listed == set()


def test_package_dir_mapping_keeps_the_repository_layout():
    mapped = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapped == {"d2m_bench.baselines": "baselines", "d2m_bench.protocols": "protocols",
                      "d2m_bench.reported": "results/reported"}


# What the build reads, for a tree that is not a git checkout (an unpacked archive).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "d2m_bench", "baselines", "protocols", "results/reported")


def _source_copy(dest: Path) -> Path:
    git = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True) \
        if shutil.which("git") else None
    if git is None or git.returncode != 0:
        for rel in BUILD_INPUTS:
            src = ROOT / rel
            if src.is_dir():
                shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dest / rel)
        return dest
    for rel in filter(None, git.stdout.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools", minversion="77")
    src = _source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "would be ignored" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    (whl,) = out.glob("d2m_bench-*.whl")
    with zipfile.ZipFile(whl) as zf:
        return zf.namelist()


def test_wheel_has_one_top_level_package(wheel):
    tops = {name.split("/")[0] for name in wheel if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"d2m_bench"}


def test_wheel_ships_every_protocol_and_the_reported_numbers(wheel):
    protocols = {p.name for p in (ROOT / "protocols").glob("*.toml")}
    assert protocols and {f"d2m_bench/protocols/{p}" for p in protocols} <= set(wheel)
    reported = {p.name for p in (ROOT / "results" / "reported").glob("*.csv")}
    assert reported and {f"d2m_bench/reported/{p}" for p in reported} <= set(wheel)
    assert "d2m_bench/baselines/__init__.py" in wheel
    assert "d2m_bench/survey/static/index.html" in wheel
    media = {f"d2m_bench/selftest/media/{p.name}" for p in (ROOT / "d2m_bench" / "selftest" / "media").iterdir()}
    assert media and media <= set(wheel) and "d2m_bench/selftest/expected.json" in wheel


def test_wheel_leaves_out_tests_and_measured_runs(wheel):
    assert not [n for n in wheel if "d2m_bench_tests" in n or n.startswith("baselines/")]
    assert not [n for n in wheel if "/runs/" in n or n.endswith("leaderboard.csv")]


def _opencv_names(requirements):
    import re

    names = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in requirements}
    return {n for n in names if n.startswith("opencv")}


def test_video_and_pose_extras_ask_for_the_same_opencv():
    """Two distributions providing cv2 overwrite each other's files (issue 11)."""
    from importlib import metadata

    extras = _pyproject()["project"]["optional-dependencies"]
    video = _opencv_names(extras["video"])
    assert len(video) == 1
    try:
        mediapipe = _opencv_names(metadata.requires("mediapipe") or [])
    except metadata.PackageNotFoundError:
        pytest.skip("mediapipe (the pose extra) is not installed: its OpenCV requirement is unknown here")
    assert mediapipe == video


def test_this_environment_has_one_opencv_distribution():
    from importlib import metadata

    names = {(d.metadata["Name"] or "").lower() for d in metadata.distributions()}
    assert len({n for n in names if n.startswith("opencv")}) <= 1, sorted(n for n in names if "opencv" in n)


def test_benchmarks_are_not_collected_by_the_test_run():
    """`make test` would list every benchmark as skipped; `make bench` names them itself."""
    from fnmatch import fnmatch

    patterns = _pyproject()["tool"]["pytest"]["ini_options"]["python_files"]
    benches = list((ROOT / "d2m_bench_tests" / "benchmarks").glob("bench_*.py"))
    assert benches and not [b.name for b in benches if any(fnmatch(b.name, p) for p in patterns)]
    assert "-o python_files='bench_*.py'" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_wheel_check():
    """.ci/run -> make test -> make wheel-check -> .ci/wheel_check.sh (issue 11 item 2)."""
    import re

    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "wheel-check" in test_recipe
    check_recipe = re.search(r"^wheel-check:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert ".ci/wheel_check.sh" in check_recipe
    script = (ROOT / ".ci" / "wheel_check.sh").read_text()
    for step in ("d2m-bench\" protocols", "d2m-bench\" demo make", "d2m-bench\" eval", "d2m-bench\" leaderboard",
                 "from d2m_bench import evaluate"):
        assert step in script, step
    assert "set -euo pipefail" in script and ".venv/bin/pip" not in script
