import subprocess
import sys

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty cache directory: no test reads another's (or the user's) cache."""
    monkeypatch.setenv("D2M_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


def run_cli(*args, cwd=None, env=None):
    """Run `d2m-bench ARGS` in a subprocess (the real entry point: exit codes, stderr)."""
    return subprocess.run([sys.executable, "-c", "import sys; from d2m_bench.cli import main; sys.exit(main())", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture
def cli():
    return run_cli
