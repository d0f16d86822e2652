"""The survey page in headless Chromium: play, rate, reload, resume, finish; the export holds
exactly the ratings given. Skips (with the reason) without chromium, chromedriver or selenium."""
import csv
import shutil
import tempfile
import time

import pytest

from d2m_bench.survey.build import build_survey
from d2m_bench.survey.export import export_ratings
from d2m_bench.survey.server import serve_in_thread

from .helpers import make_inputs

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--disable-dev-shm-usage"]


@pytest.fixture
def browser(tmp_path):
    if not CHROMIUM or not DRIVER:
        pytest.skip("chromium / chromium-driver not installed: apt-get install chromium chromium-driver (make sysdeps)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: pip install -e '.[browser]'")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    profile = tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def _wait(driver, predicate, timeout=15.0, what=""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; page state: {driver.execute_script('return document.body.dataset.state')}")


def _rate_current(driver, doc, score):
    """Play the shown stimulus to its end, pick ``score``, submit; returns the stimulus id."""
    from selenium.webdriver.common.by import By

    sid = _wait(driver, lambda: driver.execute_script(
        "const m = document.getElementById('stimulus'); return m && m.readyState >= 1 ? m.dataset.stimulus : null"),
        what="stimulus metadata")
    assert driver.find_element(By.ID, "scale").get_attribute("disabled") is not None  # not before playing
    assert not driver.find_element(By.ID, "submit").is_enabled()
    driver.find_element(By.ID, "play").click()
    _wait(driver, lambda: driver.execute_script("return document.getElementById('stimulus').dataset.playback === 'complete'"),
          timeout=20, what=f"playback of {sid} to end")
    driver.find_element(By.CSS_SELECTOR, f"label:has(#score-{score})").click()
    driver.find_element(By.ID, "submit").click()
    _wait(driver, lambda: driver.execute_script(
        "return document.body.dataset.state === 'done' || document.body.dataset.stimulus !== arguments[0]", sid),
        what=f"the page to move past {sid}")
    return sid


def test_rate_reload_resume_finish_export(tmp_path, browser):
    from selenium.webdriver.common.by import By

    systems, videos = make_inputs(tmp_path, systems=("gt", "a"), segments=2, seconds=0.6)
    doc = build_survey(systems, videos, tmp_path / "s", n_raters=2, per_rater=2, traps_per_rater=1,
                       trap_method="beep", seed=3, progress=False)
    server, base = serve_in_thread(tmp_path / "s")
    rater, token = "r001", doc["raters"]["r001"]["token"]
    seq = doc["raters"][rater]["sequence"]
    given = {}
    try:
        browser.get(f"{base}/?rater={rater}&token=wrong")
        _wait(browser, lambda: browser.execute_script("return document.body.dataset.state") == "error", what="error page")
        assert "not valid" in browser.find_element(By.ID, "error-text").text

        url = f"{base}/?rater={rater}&token={token}"
        browser.get(url)
        _wait(browser, lambda: browser.execute_script("return document.body.dataset.state") == "intro", what="intro")
        assert "beeps" in browser.find_element(By.ID, "instructions").text
        browser.find_element(By.ID, "start").click()
        for k in range(3):
            sid = _rate_current(browser, doc, score=k + 2)
            assert sid == seq[k]  # the page follows the assigned order
            given[sid] = k + 2
        # Reload: the page resumes at the fourth stimulus.
        browser.get(url)
        _wait(browser, lambda: browser.execute_script("return document.body.dataset.state") == "intro", what="intro after reload")
        assert "3 of 6 clips are already rated" in browser.find_element(By.ID, "resume-note").text
        browser.find_element(By.ID, "start").click()
        while browser.execute_script("return document.body.dataset.state") != "done":
            k = len(given)
            sid = _rate_current(browser, doc, score=5 - (k % 5))
            assert sid == seq[k]
            given[sid] = 5 - (k % 5)
        assert browser.find_element(By.ID, "progress").text == "6 of 6 done"
        browser.get(url)  # a finished rater sees the thank-you page
        _wait(browser, lambda: browser.execute_script("return document.body.dataset.state") == "done", what="done page")
    finally:
        server.shutdown()
        server.server_close()
        server.RequestHandlerClass.survey.store.close()
    assert len(given) == len(seq) == 6
    out = tmp_path / "ratings.csv"
    assert export_ratings(tmp_path / "s", out) == 6
    rows = list(csv.DictReader(open(out)))
    assert {r["stimulus"]: int(r["score"]) for r in rows} == given
    for r in rows:
        assert r["rater"] == rater and r["playback_complete"] == "1" and float(r["played_fraction"]) == 1.0
        assert float(r["listen_seconds"]) > 0.3  # real playback time was measured
        assert float(r["response_seconds"]) >= float(r["listen_seconds"]) * 0.5
