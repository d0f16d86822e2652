import os
import subprocess
import sys

import pytest

# `make test` runs one pytest process per core (-n auto). torch's and BLAS's own thread pools in
# each, and in the subprocesses the tests start, put several threads on every core, and waiting
# OpenMP threads spin: on 2 cores the suite took 15 min 19 s with them and 10 min 29 s with one
# thread per process (the same 1,152 tests passing). Set before any test module imports torch or
# numpy, only when xdist runs several processes (`make bench` keeps the libraries' defaults); an
# explicit OMP_NUM_THREADS is kept. Tests about threading ask for threads themselves.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


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


# A finder in front of the path finder that reports torch (and the libraries built on it) absent:
# `import torch` raises ModuleNotFoundError and importlib.util.find_spec("torch") is None, as in a
# core install (`pip install .`) without the torch extra.
_NO_TORCH = """
import importlib.machinery, sys
_find = importlib.machinery.PathFinder.find_spec.__func__
def _find_spec(cls, name, path=None, target=None):
    if name.split(".")[0] in ("torch", "torchaudio", "torchlibrosa", "torchvggish"):
        return None
    return _find(cls, name, path, target)
importlib.machinery.PathFinder.find_spec = classmethod(_find_spec)
from d2m_bench.cli import main
sys.exit(main())
"""


def run_cli_without_torch(*args, cwd=None, env=None):
    """`d2m-bench ARGS` in a subprocess that cannot import torch."""
    return subprocess.run([sys.executable, "-c", _NO_TORCH, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


@pytest.fixture
def chromium(tmp_path):
    """Headless system Chromium via selenium, console messages kept (driver.get_log("browser"));
    skips with the reason when chromium, chromedriver or selenium is missing (make sysdeps)."""
    import shutil
    import tempfile

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("chromium / chromium-driver not installed: apt-get install chromium chromium-driver (make sysdeps)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: pip install -e '.[browser]'")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--mute-audio", "--disable-dev-shm-usage",
                 "--window-size=1200,900"):
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path, prefix='chromium-')}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def panns_weights(tmp_path_factory):
    """name -> a random-weight PANNs checkpoint ({"model": state_dict}, the published layout),
    built once per session with the library's own Cnn14 (seeded). Skips without panns_inference."""
    pytest.importorskip("torchlibrosa", reason="panns extra not installed (pip install 'd2m-bench[panns]')")
    if __import__("importlib.util").util.find_spec("panns_inference") is None:
        pytest.skip("panns extra not installed (pip install 'd2m-bench[panns]')")
    import torch

    from d2m_bench.embedders import panns

    folder = tmp_path_factory.mktemp("panns")
    made = {}

    def make(name="panns-cnn14", seed=0):
        if (name, seed) not in made:
            torch.manual_seed(seed)
            model = panns.build_model(name)
            with torch.no_grad():  # non-trivial BatchNorm statistics, so that bn0/bn layers matter
                for mod in model.modules():
                    if isinstance(mod, torch.nn.BatchNorm2d):
                        mod.running_mean.uniform_(-0.5, 0.5)
                        mod.running_var.uniform_(0.5, 2.0)
            path = folder / f"{name}-seed{seed}.pth"
            torch.save({"model": model.state_dict(), "iteration": 0}, path)
            made[(name, seed)] = path
        return made[(name, seed)]

    return make
