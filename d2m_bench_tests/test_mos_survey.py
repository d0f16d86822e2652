"""MOS survey: build (stimuli, balanced assignment, traps), server (API, safety, persistence),
export, concurrent raters."""
import csv
import http.client
import json
import re
import sqlite3
from collections import Counter
from urllib.parse import urlsplit

import av
import numpy as np
import pytest

from d2m_bench.io.audio import load_audio, write_audio
from d2m_bench.errors import UserError
from d2m_bench.mos.ratings import read_ratings
from d2m_bench.survey.build import build_survey
from d2m_bench.survey.export import export_ratings
from d2m_bench.survey.loadcheck import simulate_raters
from d2m_bench.survey.server import serve_in_thread

from .helpers import make_inputs

SR = 22050


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("survey_inputs")
    systems, videos = make_inputs(root)
    doc = build_survey(systems, videos, root / "survey", n_raters=6, per_rater=6, seed=5, traps_per_rater=1,
                       trap_method="beep", progress=False)
    return root, doc


def count_beeps(y, sr):
    """Bursts of the 1-kHz trap code after the music lead-in."""
    env = np.convolve(np.abs(y), np.ones(int(0.02 * sr)) / int(0.02 * sr), mode="same") > 0.1
    on = np.flatnonzero(np.diff(env.astype(int)) == 1)
    return len(on)


def test_build_assignment_balanced_blind_and_seeded(built, tmp_path):
    root, doc = built
    survey = root / "survey"
    assert doc["reference"] == "gt" and doc["items"] == ["seg0", "seg1", "seg2", "seg3"]
    stim = doc["stimuli"]
    for rater, info in doc["raters"].items():
        seq = info["sequence"]
        assert len(seq) == len(set(seq)) == 2 * (6 + 1)  # per aspect: 6 stimuli + 1 trap
        for aspect in ("coherence", "quality"):
            mine = [stim[s] for s in seq if stim[s]["aspect"] == aspect]
            assert stim[[s for s in seq if stim[s]["aspect"] == aspect][0]]["kind"] != "trap"  # never first
            assert Counter(m["kind"] == "trap" for m in mine)[True] == 1
            # 6 slots over 3 systems: each system exactly twice for every rater.
            assert Counter(m["system"] for m in mine if m["kind"] != "trap") == {"gt": 2, "d2m": 2, "cmt": 2}
        # coherence block first, then quality (the paper's order)
        aspects = [stim[s]["aspect"] for s in seq]
        assert aspects == sorted(aspects)
    for aspect in ("coherence", "quality"):
        # 6 raters x 6 = 36 ratings over 3 x 4 = 12 stimuli: exactly 3 each.
        per = Counter(s for info in doc["raters"].values() for s in info["sequence"]
                      if stim[s]["aspect"] == aspect and stim[s]["kind"] != "trap")
        assert len(per) == 12 and set(per.values()) == {3}
        assert doc["balance"][aspect]["ratings_per_stimulus_min"] == doc["balance"][aspect]["ratings_per_stimulus_max"] == 3
    for sid, s in stim.items():
        f = survey / s["file"]
        assert f.is_file() and f.name.startswith(sid) and s["system"] not in f.name and "seg" not in f.name
        assert (s["kind"] == "reference") == (s["system"] == "gt")
    # Coherence stimulus: the dance video stream with the system's audio as AAC, same length.
    sid = next(k for k, s in stim.items() if s["aspect"] == "coherence" and s["system"] == "d2m")
    with av.open(str(survey / stim[sid]["file"])) as c:
        assert [st.type for st in c.streams] == ["video", "audio"]
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
    y, sr = load_audio(survey / stim[sid]["file"], sr=None)
    src, _ = load_audio(root / "d2m" / f"{stim[sid]['item']}.wav", sr=None)
    assert sr == SR and abs(len(y) - len(src)) <= 2048  # AAC priming/padding only
    spec = np.abs(np.fft.rfft(y[2048:-2048]))
    assert np.fft.rfftfreq(len(y) - 4096, 1 / sr)[spec.argmax()] == pytest.approx(440 + 10 * int(stim[sid]["item"][3]), abs=3)
    # Quality stimulus: the system's audio, losslessly (16-bit WAV of a 16-bit WAV).
    sid = next(k for k, s in stim.items() if s["aspect"] == "quality" and s["system"] == "cmt")
    y, _ = load_audio(survey / stim[sid]["file"], sr=None)
    np.testing.assert_array_equal(y, load_audio(root / "cmt" / f"{stim[sid]['item']}.wav", sr=None)[0])
    # Traps: beep code = expected score; the page instructions explain it.
    traps = {k: s for k, s in stim.items() if s["kind"] == "trap"}
    assert traps and "beeps" in doc["instructions"]
    for sid, s in traps.items():
        y, sr = load_audio(survey / s["file"], sr=None)
        assert count_beeps(y[int(1.3 * sr):], sr) == s["expected_score"]
    for name in ("index.html", "app.js", "style.css"):
        text = (survey / "static" / name).read_text()
        assert "http://" not in text and "https://" not in text  # self-contained, no CDN
    # Same seed, same design; another seed, another one (tokens are random in both).
    again = build_survey([f"{n}={root / n}" for n in ("gt", "d2m", "cmt")], root / "videos", tmp_path / "s2",
                         n_raters=6, per_rater=6, seed=5, trap_method="beep", progress=False)
    other = build_survey([f"{n}={root / n}" for n in ("gt", "d2m", "cmt")], root / "videos", tmp_path / "s3",
                         n_raters=6, per_rater=6, seed=6, trap_method="beep", progress=False)
    design = lambda d: [[(d["stimuli"][s]["system"], d["stimuli"][s]["item"], d["stimuli"][s].get("expected_score"))  # noqa: E731
                         for s in r["sequence"]] for r in d["raters"].values()]
    assert design(again) == design(doc) and design(other) != design(doc)
    assert again["raters"]["r001"]["token"] != doc["raters"]["r001"]["token"]


def test_build_errors_and_missing_segments(tmp_path):
    systems, videos = make_inputs(tmp_path, systems=("gt", "x"), segments=3)
    (tmp_path / "x" / "seg2.wav").unlink()
    write_audio(tmp_path / "gt" / "extra.wav", np.zeros(100), SR)
    doc = build_survey(systems, videos, tmp_path / "s", n_raters=2, per_rater=2, trap_method="beep",
                       traps_per_rater=0, progress=False)
    assert doc["items"] == ["seg0", "seg1"] and doc["items_left_out"] == ["extra", "seg2"]
    with pytest.raises(UserError, match="exists and is not empty"):
        build_survey(systems, videos, tmp_path / "s", n_raters=2, progress=False)
    with pytest.raises(UserError, match="exceeds the 4 system x segment stimuli"):
        build_survey(systems, videos, tmp_path / "s", n_raters=2, per_rater=5, force=True, progress=False)
    with pytest.raises(UserError, match="NAME=DIR"):
        build_survey(["gt"], videos, tmp_path / "t", progress=False)
    with pytest.raises(UserError, match="not one of the systems"):
        build_survey(systems, videos, tmp_path / "t", reference="truth", progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not a survey"):
        build_survey(systems, videos, tmp_path / "junk", force=True, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio of system e files"):
        build_survey([f"e={tmp_path / 'empty'}"], videos, tmp_path / "t", progress=False)


@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="espeak-ng not installed: apt-get install espeak-ng")
def test_spoken_trap(tmp_path):
    systems, videos = make_inputs(tmp_path, systems=("a",), segments=1)
    doc = build_survey(systems, videos, tmp_path / "s", n_raters=1, per_rater=1, aspects=("quality",),
                       progress=False)
    assert doc["trap_method"] == "espeak-ng" and "a voice" in doc["instructions"]
    (trap,) = [s for s in doc["stimuli"].values() if s["kind"] == "trap"]
    y, sr = load_audio(tmp_path / "s" / trap["file"], sr=None)
    speech = y[int(1.3 * sr):]
    assert len(speech) > 1.5 * sr and np.abs(speech).max() == pytest.approx(0.5, abs=0.01)
    # Speech, not a tone: energy spread over many bands.
    spec = np.abs(np.fft.rfft(speech)) ** 2
    assert spec.max() / spec.sum() < 0.01


def _req(base, method, path, body=None, raw=None, headers=None):
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    out = (resp.status, resp.read(), dict(resp.getheaders()))
    conn.close()
    return out


def _stop(server):
    server.shutdown()
    server.server_close()
    server.RequestHandlerClass.survey.store.close()


def test_server_api_safety_resume_and_export(built, tmp_path):
    root, doc = built
    survey = root / "survey"
    (survey / "ratings.sqlite").unlink(missing_ok=True)
    server, base = serve_in_thread(survey)
    r1, r2 = doc["raters"]["r001"], doc["raters"]["r002"]
    try:
        st, body, _ = _req(base, "GET", "/api/session?rater=r001&token=nope")
        assert st == 403
        st, body, _ = _req(base, "GET", f"/api/session?rater=r001&token={r1['token']}")
        sess = json.loads(body)
        assert st == 200 and [i["id"] for i in sess["items"]] == r1["sequence"] and sess["done"] == []
        assert "system" not in body.decode() and "trap" not in body.decode() and "gt" not in body.decode()
        first = sess["items"][0]
        good = {"rater": "r001", "token": r1["token"], "stimulus": first["id"], "aspect": first["aspect"], "score": 4,
                "playback_complete": True, "played_fraction": 1.0, "listen_seconds": 1.0, "response_seconds": 3.5}
        assert _req(base, "POST", "/api/rating", good)[0] == 201
        assert _req(base, "POST", "/api/rating", {**good, "score": 2})[0] == 409  # duplicate, first kept
        bad = [({**good, "score": 6}, 400), ({**good, "score": True}, 400), ({**good, "score": "4"}, 400),
               ({**good, "score": 3.0}, 400), ({**good, "aspect": "quality" if first["aspect"] != "quality" else "coherence"}, 400),
               ({**good, "played_fraction": 1.5}, 400), ({**good, "listen_seconds": -1}, 400),
               ({**good, "playback_complete": 1}, 400), ({**good, "token": r2["token"]}, 403),
               ({**good, "played_fraction": 0.1}, 400), ({**good, "played_fraction": 0.98}, 400),
               ({**good, "stimulus": next(s for s in r2["sequence"] if s not in r1["sequence"])}, 404),
               ({**good, "stimulus": "../survey"}, 404), ([1, 2], 400)]
        for payload, status in bad:
            assert _req(base, "POST", "/api/rating", payload)[0] == status, payload
        assert _req(base, "POST", "/api/rating", raw=b"{not json")[0] == 400
        assert _req(base, "POST", "/api/rating", raw=b"x" * 5000)[0] == 413
        assert _req(base, "POST", "/api/other", good)[0] == 404
        for path in ("/stimuli/../survey.json", "/stimuli/%2e%2e/survey.json", "/stimuli/..%2fsurvey.json",
                     "/static/../survey.json", "/static/survey.json", "/survey.json", "/ratings.sqlite",
                     "/stimuli/", "/stimuli/%00", "/stimuli//etc/passwd", "/stimuli/nope.mp4"):
            st, body, _ = _req(base, "GET", path)
            assert st == 404 and b"token" not in body, path
        # Media: whole file and byte ranges (what <video> asks for), only with the rater's token
        # (issue 24), as a query or as the cookie /api/session set.
        path = "/" + doc["stimuli"][first["id"]]["file"]
        data = (survey / doc["stimuli"][first["id"]]["file"]).read_bytes()
        assert _req(base, "GET", path)[0] == 403
        other = next(s for s in r2["sequence"] if s not in r1["sequence"])
        assert _req(base, "GET", "/" + doc["stimuli"][other]["file"] + f"?rater=r001&token={r1['token']}")[0] == 404
        cookie = {"Cookie": f"d2m_rater=r001:{r1['token']}"}
        assert _req(base, "GET", path, headers=cookie)[1] == data
        path += f"?rater=r001&token={r1['token']}"
        st, body, hdr = _req(base, "GET", path)
        assert st == 200 and body == data and hdr["Accept-Ranges"] == "bytes"
        st, body, hdr = _req(base, "GET", path, headers={"Range": "bytes=10-99"})
        assert st == 206 and body == data[10:100] and hdr["Content-Range"] == f"bytes 10-99/{len(data)}"
        st, body, _ = _req(base, "GET", path, headers={"Range": "bytes=-16"})
        assert st == 206 and body == data[-16:]
        assert _req(base, "GET", path, headers={"Range": f"bytes={len(data)}-"})[0] == 416
        st, body, _ = _req(base, "GET", "/")
        assert st == 200 and b"app.js" in body
    finally:
        _stop(server)
    # A new server on the same folder: the rating survived, the rater resumes after it.
    server, base = serve_in_thread(survey)
    try:
        sess = json.loads(_req(base, "GET", f"/api/session?rater=r001&token={r1['token']}")[1])
        assert sess["done"] == [first["id"]]
        second = sess["items"][1]
        assert _req(base, "POST", "/api/rating", {**good, "stimulus": second["id"], "aspect": second["aspect"], "score": 1})[0] == 201
    finally:
        _stop(server)
    out = tmp_path / "ratings.csv"
    assert export_ratings(survey, out) == 2
    rows = list(csv.DictReader(open(out)))
    want = {first["id"]: 4, second["id"]: 1}
    assert {r["stimulus"]: int(r["score"]) for r in rows} == want
    for r in rows:
        s = doc["stimuli"][r["stimulus"]]
        assert (r["item"], r["system"], r["aspect"]) == (s["item"], s["system"], s["aspect"])
        assert r["is_trap"] == str(int(s["kind"] == "trap")) and r["is_reference"] == str(int(s["kind"] == "reference"))
        assert r["playback_complete"] == "1" and r["submitted_at"]
    read_ratings(out)  # the export is a valid ratings file


def test_page_cannot_tell_traps_references_or_systems(built):
    """Everything the page receives (ids, URLs, media type, order) looks the same for a trapping
    clip, a hidden reference and a system stimulus: one shuffled numbering, one format."""
    root, doc = built
    stim = doc["stimuli"]
    kinds = Counter(s["kind"] for s in stim.values())
    assert kinds["trap"] >= 4 and kinds["reference"] and kinds["normal"]
    # One namespace: the aspect's letter and a 4-digit number; the numbers are 1..N, each once,
    # over all kinds together.
    assert all(re.fullmatch(r"[cq]\d{4}", sid) and sid[0] == s["aspect"][0] for sid, s in stim.items())
    assert sorted(int(sid[1:]) for sid in stim) == list(range(1, len(stim) + 1))
    # The numbering is shuffled: the traps' numbers are neither the lowest nor the highest ones.
    trap_numbers = sorted(int(sid[1:]) for sid, s in stim.items() if s["kind"] == "trap")
    assert trap_numbers != list(range(1, len(trap_numbers) + 1))
    assert trap_numbers != list(range(len(stim) - len(trap_numbers) + 1, len(stim) + 1))
    server, base = serve_in_thread(root / "survey")
    try:
        shape = {}  # kind -> set of what the page can see of an item
        for rater, info in doc["raters"].items():
            sess = json.loads(_req(base, "GET", f"/api/session?rater={rater}&token={info['token']}")[1])
            for it in sess["items"]:
                kind = stim[it["id"]]["kind"]
                ext = {"video": "mp4", "audio": "wav"}[it["media"]]
                assert it["url"] == f"/stimuli/{it['id']}.{ext}" and it["media"] == doc["aspects"][it["aspect"]]["media"]
                shape.setdefault(kind, set()).add((tuple(sorted(it)), re.sub(r"\d", "9", it["id"]),
                                                   it["aspect"], it["media"], re.sub(r"\d", "9", it["url"])))
        assert shape["trap"] == shape["normal"] == shape["reference"]
    finally:
        _stop(server)


def test_trap_clip_as_long_as_the_stimuli(tmp_path):
    """A trapping clip is padded with silence to the length of the real stimuli (when its
    instruction fits), so neither its duration nor its file size gives it away."""
    systems, videos = make_inputs(tmp_path, systems=("gt", "a"), segments=2, seconds=5.0)
    doc = build_survey(systems, videos, tmp_path / "s", n_raters=3, per_rater=2, traps_per_rater=2,
                       trap_method="beep", seed=1, progress=False)
    stim = doc["stimuli"]
    traps = [s for s in stim.values() if s["kind"] == "trap"]
    assert {s["aspect"] for s in traps} == {"coherence", "quality"}
    wav_sizes = {s["kind"]: set() for s in stim.values()}
    for s in stim.values():
        if s["aspect"] == "quality":
            wav_sizes[s["kind"]].add((tmp_path / "s" / s["file"]).stat().st_size)
    assert len(set().union(*wav_sizes.values())) == 1  # all 5 s at 22050 Hz, 16 bit
    lengths = {sid: len(load_audio(tmp_path / "s" / s["file"], sr=None)[0]) for sid, s in stim.items()
               if s["aspect"] == "coherence"}
    assert max(lengths.values()) - min(lengths.values()) <= 2048  # AAC priming/padding only
    for sid, s in stim.items():  # the trap instruction is still all there
        if s["kind"] == "trap":
            y, sr = load_audio(tmp_path / "s" / s["file"], sr=None)
            assert count_beeps(y[int(1.3 * sr):], sr) == s["expected_score"]


def test_server_answers_malformed_requests(built, capsys):
    """Requests the handlers could choke on get an HTTP answer, never a dropped connection."""
    root, doc = built
    survey = root / "survey"
    (survey / "ratings.sqlite").unlink(missing_ok=True)
    r1 = doc["raters"]["r001"]
    server, base = serve_in_thread(survey)
    try:
        # Non-ASCII tokens: hmac.compare_digest raises TypeError on non-ASCII str.
        for token in ("%C3%A9t%C3%A9", "%E2%82%AC" + r1["token"][1:], "%FF"):
            st, body, _ = _req(base, "GET", f"/api/session?rater=r001&token={token}")
            assert st == 403 and json.loads(body)["ok"] is False, token
        item = r1["sequence"][0]
        good = {"rater": "r001", "token": r1["token"], "stimulus": item, "aspect": doc["stimuli"][item]["aspect"],
                "score": 3, "playback_complete": True, "played_fraction": 1.0, "listen_seconds": 1.0,
                "response_seconds": 2.0}
        for token in ("\u00e9t\u00e9", "\ud800", r1["token"] + "\u00e9"):
            assert _req(base, "POST", "/api/rating", {**good, "token": token})[0] == 403, token
        # Over-long file names (the OS refuses them with ENAMETOOLONG), deep nesting in JSON.
        for path in ("/stimuli/" + "a" * 300 + ".wav", "/stimuli/" + "/".join(["b" * 250] * 20),
                     "/static/" + "c" * 5000):
            st, body, _ = _req(base, "GET", path)
            assert st == 404 and json.loads(body)["ok"] is False, path[:30]
        assert _req(base, "POST", "/api/rating", raw=b"[" * 3000)[0] == 400
        # Anything else unforeseen: 500 with a JSON body and one line on stderr (no token in it).
        survey_obj = server.RequestHandlerClass.survey
        real = survey_obj.session
        survey_obj.session = lambda *a: 1 / 0
        capsys.readouterr()
        try:
            st, body, _ = _req(base, "GET", f"/api/session?rater=r001&token={r1['token']}")
        finally:
            survey_obj.session = real
        assert st == 500 and json.loads(body) == {"ok": False, "error": "internal server error"}
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "ZeroDivisionError" in err[0] and "/api/session" in err[0]
        assert r1["token"] not in err[0]
        # Still serving; nothing was stored by any of the above.
        assert _req(base, "GET", f"/api/session?rater=r001&token={r1['token']}")[0] == 200
        assert json.loads(_req(base, "GET", f"/api/session?rater=r001&token={r1['token']}")[1])["done"] == []
        # Playback fields must agree: "complete" needs played_fraction >= 0.99; an incomplete
        # playback is stored as such (screening decides what to do with it).
        assert _req(base, "POST", "/api/rating", {**good, "played_fraction": 0.5})[0] == 400
        assert _req(base, "POST", "/api/rating", {**good, "playback_complete": False, "played_fraction": 0.5})[0] == 201
        assert _req(base, "POST", "/api/rating", {**good, "stimulus": r1["sequence"][1],
                                                  "aspect": doc["stimuli"][r1["sequence"][1]]["aspect"],
                                                  "played_fraction": 0.99})[0] == 201
    finally:
        _stop(server)
        (survey / "ratings.sqlite").unlink(missing_ok=True)


def test_export_without_ratings(built, tmp_path):
    root, _ = built
    with pytest.raises(UserError, match="not a survey folder"):
        export_ratings(tmp_path, tmp_path / "x.csv")


def test_concurrent_raters_no_loss_no_duplicates(tmp_path):
    systems, videos = make_inputs(tmp_path, systems=("gt", "a"), segments=3, seconds=0.4)
    doc = build_survey(systems, videos, tmp_path / "s", n_raters=30, per_rater=3, trap_method="beep", progress=False)
    server, base = serve_in_thread(tmp_path / "s")
    try:
        res = simulate_raters(base, doc["raters"], seed=1)
    finally:
        _stop(server)
    assert res["errors"] == {}
    per_rater = 2 * (3 + 1)
    for rater, r in res["raters"].items():
        assert r["n_items"] == per_rater and len(r["accepted"]) == per_rater and r["duplicate_status"] == 409
    db = sqlite3.connect(tmp_path / "s" / "ratings.sqlite")
    rows = db.execute("SELECT rater, stimulus, score FROM ratings").fetchall()
    assert len(rows) == 30 * per_rater == len(set((r, s) for r, s, _ in rows))
    accepted = {(r, s, sc) for r, v in res["raters"].items() for s, sc in v["accepted"]}
    assert set(rows) == accepted
    assert res["requests"] == 30 * (1 + per_rater + 1)


def test_cli_build_serve_killed_export_aggregate(tmp_path, cli):
    import os
    import signal
    import subprocess
    import sys

    systems, videos = make_inputs(tmp_path, systems=("gt", "a"), segments=2, seconds=0.4)
    args = ["survey", "build", *sum((["--systems", s] for s in systems), []), "--videos", videos,
            "--out-dir", tmp_path / "s", "--raters", 2, "--items-per-rater", 2, "--trap-method", "beep"]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "reference: gt" in res.stdout and "coherence: 4/4 stimuli used" in res.stdout
    res = cli(*args)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "--force" in res.stderr
    res = cli("survey", "export", tmp_path / "s", "--out", tmp_path / "r.csv")
    assert res.returncode == 2 and "no ratings yet" in res.stderr
    assert cli("survey", "build", "--systems", systems[0], "--out-dir", tmp_path / "t").returncode == 2  # no --videos
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from d2m_bench.cli import main; sys.exit(main())",
                             "survey", "serve", str(tmp_path / "s"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link = proc.stdout.readline().strip()  # "r001: http://127.0.0.1:PORT/?rater=r001&token=..."
        assert link.startswith("r001: http://127.0.0.1:")
        u = urlsplit(link.split(" ", 1)[1])
        base = f"http://{u.hostname}:{u.port}"
        token = dict(p.split("=") for p in u.query.split("&"))["token"]
        sess = json.loads(_req(base, "GET", f"/api/session?rater=r001&token={token}")[1])
        it = sess["items"][0]
        body = {"rater": "r001", "token": token, "stimulus": it["id"], "aspect": it["aspect"], "score": 3,
                "playback_complete": True, "played_fraction": 1.0, "listen_seconds": 0.4, "response_seconds": 2.0}
        assert _req(base, "POST", "/api/rating", body)[0] == 201
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no clean shutdown: the acknowledged rating must survive
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    res = cli("survey", "export", tmp_path / "s", "--out", tmp_path / "r.csv")
    assert res.returncode == 0 and "wrote 1 ratings" in res.stdout
    (row,) = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert row["stimulus"] == it["id"] and row["score"] == "3"
    res = cli("mos", "aggregate", tmp_path / "r.csv", "--bootstrap", 50)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "r-mos" / "mos.json").is_file()
