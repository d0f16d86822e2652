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
