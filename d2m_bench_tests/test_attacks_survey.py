"""Issue 13 attacks on `survey build|serve|export`: each failure reproduced, now refused or survived.

4: `build --force` on a survey being served lost acknowledged ratings and deleted the old ones.
6: idle/half-open connections starved real raters; keep-alive connections never closed; --verbose
   logged rater tokens.
11: a corrupt ratings.sqlite gave a traceback in serve and export.
Servers here listen on loopback only; every loop is bounded.
"""
import http.client
import json
import os
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from d2m_bench.io.audio import write_audio
from d2m_bench.errors import UserError
from d2m_bench.survey.build import build_survey
from d2m_bench.survey.server import serve_in_thread

SR = 22050
CLI = [sys.executable, "-c", "import sys; from d2m_bench.cli import main; sys.exit(main())"]


def _systems(root: Path, names=("gt", "a"), segments=2):
    """Audio-only inputs (the quality aspect needs no video): a tone per system and segment."""
    t = np.arange(int(0.3 * SR)) / SR
    for j, name in enumerate(names):
        for k in range(segments):
            write_audio(root / name / f"seg{k}.wav", 0.3 * np.sin(2 * np.pi * (220 * (j + 1) + 10 * k) * t), SR)
    return [f"{n}={root / n}" for n in names]


def _build_args(root: Path, out: Path):
    return ["survey", "build", *sum((["--systems", s] for s in _systems(root)), []), "--aspects", "quality",
            "--out-dir", str(out), "--raters", "2", "--items-per-rater", "2", "--trap-method", "beep"]


def _one_line_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def _req(base, method, path, body=None):
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _serve(survey, *extra, nofile=None):
    """`survey serve` in a subprocess on a free port; returns (process, base url, {rater: token})."""
    def limit():
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))  # hard too: serve cannot lift it

    proc = subprocess.Popen([*CLI, "survey", "serve", str(survey), "--port", "0", *map(str, extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    tokens, base = {}, None
    for _ in range(100):  # the links, one per rater, then stdout stays open
        line = proc.stdout.readline().strip()
        m = re.match(r"(r\d+): (http://[^/]+)/\?rater=\w+&token=(\S+)$", line)
        if not m:
            break
        tokens[m.group(1)], base = m.group(3), m.group(2)
        if len(tokens) == 2:
            break
    if base is None:
        proc.kill()
        raise AssertionError(f"server did not start: {proc.stderr.read()}")
    return proc, base, tokens


def _kill(proc):
    proc.kill()  # SIGKILL: no clean shutdown
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def _interrupt(proc) -> str:
    """Stop a server with SIGINT (its clean shutdown, killed after 20 s); its stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


def _rate(base, rater, token, score=3, index=0):
    status, body = _req(base, "GET", f"/api/session?rater={rater}&token={token}")
    assert status == 200, body
    it = json.loads(body)["items"][index]
    return _req(base, "POST", "/api/rating", {
        "rater": rater, "token": token, "stimulus": it["id"], "aspect": it["aspect"], "score": score,
        "playback_complete": True, "played_fraction": 1.0, "listen_seconds": 0.3, "response_seconds": 1.0})[0], it["id"]


def _rows(db: Path):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT rater, stimulus, score FROM ratings").fetchall()
    finally:
        con.close()


# --- failure 4: build --force under a running server --------------------------------------------
def test_build_force_refused_while_served_then_moves_ratings_aside(tmp_path):
    out = tmp_path / "s"
    assert _run(*_build_args(tmp_path, out)).returncode == 0
    proc, base, tokens = _serve(out)
    try:
        status, stim = _rate(base, "r001", tokens["r001"], score=4)
        assert status == 201
        _one_line_error(_run(*_build_args(tmp_path, out), "--force"), "in use", "survey serve")
        # The server still serves and stores into the same database.
        assert _rate(base, "r002", tokens["r002"], score=2)[0] == 201
    finally:
        _kill(proc)  # the kernel drops the lock with the process
    assert {(r, s) for r, _, s in _rows(out / "ratings.sqlite")} == {("r001", 4), ("r002", 2)}
    res = _run(*_build_args(tmp_path, out), "--force")
    assert res.returncode == 0, res.stderr
    m = re.search(r"moved ratings\.sqlite to (\S+)", res.stdout)
    assert m, res.stdout
    aside = Path(m.group(1))
    assert aside.parent == out and re.fullmatch(r"ratings-replaced-\d{8}T\d{6}Z\.sqlite", aside.name)
    assert ("r001", stim, 4) in _rows(aside) and {(r, s) for r, _, s in _rows(aside)} == {("r001", 4), ("r002", 2)}
    assert not (out / "ratings.sqlite").exists()
    doc = json.loads((out / "survey.json").read_text())
    assert doc["replaced_ratings"] == [aside.name]
    # A second replacement keeps the first moved-aside database as well.
    proc, base, tokens = _serve(out)
    try:
        assert _rate(base, "r001", tokens["r001"], score=5)[0] == 201
    finally:
        _kill(proc)
    res = _run(*_build_args(tmp_path, out), "--force")
    assert res.returncode == 0, res.stderr
    kept = sorted(p.name for p in out.glob("ratings-replaced-*.sqlite"))
    assert len(kept) == 2 and aside.name in kept
    assert [s for _, _, s in _rows(out / [k for k in kept if k != aside.name][0])] == [5]


def test_build_force_refused_in_process_while_server_thread_runs(tmp_path):
    systems = _systems(tmp_path)
    out = tmp_path / "s"
    build_survey(systems, None, out, n_raters=1, per_rater=2, aspects=("quality",), trap_method="beep",
                 progress=False)
    server, base = serve_in_thread(out)
    try:
        with pytest.raises(UserError, match="in use"):
            build_survey(systems, None, out, n_raters=1, per_rater=2, aspects=("quality",), trap_method="beep",
                         progress=False, force=True)
        assert (out / "survey.json").is_file() and (out / "ratings.sqlite").is_file()
    finally:
        server.shutdown()
        server.server_close()
    doc = build_survey(systems, None, out, n_raters=1, per_rater=2, aspects=("quality",), trap_method="beep",
                       progress=False, force=True)
    assert len(doc["replaced_ratings"]) == 1


def test_serve_refused_while_another_server_holds_the_survey(tmp_path):
    out = tmp_path / "s"
    assert _run(*_build_args(tmp_path, out)).returncode == 0
    proc, _, _ = _serve(out)
    try:
        _one_line_error(_run("survey", "serve", out, "--port", 0), "in use")
    finally:
        _kill(proc)


# --- failure 6: connections -----------------------------------------------------------------------
def test_1100_idle_and_half_open_connections_do_not_starve_raters(tmp_path):
    """The server runs with the common soft limit of 1024 open files; 1,100 connections that send
    nothing or half a request are opened first, then a real rater fetches and rates."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 1400
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"the hard open-file limit ({hard}) is below the {need} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    out = tmp_path / "s"
    assert _run(*_build_args(tmp_path, out)).returncode == 0
    proc, base, tokens = _serve(out, nofile=1024)
    u = urlsplit(base)
    idle = []
    try:
        for i in range(1100):
            s = socket.socket()
            s.settimeout(2)
            s.connect_ex((u.hostname, u.port))  # a refused or timed-out connect is left as it is
            idle.append(s)
        for i, s in enumerate(idle):
            if i % 2:
                try:  # half a request: a request line, no end of headers
                    s.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
                except OSError:
                    pass
        time.sleep(1.0)
        t0 = time.monotonic()
        for k in range(2):
            status, _ = _rate(base, "r001", tokens["r001"], index=k)
            assert status == 201
        assert time.monotonic() - t0 < 10
    finally:
        for s in idle:
            s.close()
        _kill(proc)


def test_idle_keep_alive_connections_are_closed(tmp_path):
    systems = _systems(tmp_path)
    out = tmp_path / "s"
    build_survey(systems, None, out, n_raters=1, per_rater=2, aspects=("quality",), trap_method="beep",
                 progress=False)
    server, base = serve_in_thread(out, idle_timeout=0.5)
    u = urlsplit(base)
    try:
        silent = socket.create_connection((u.hostname, u.port), timeout=5)
        kept = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        kept.request("GET", "/static/style.css")  # HTTP/1.1: the connection stays open afterwards
        resp = kept.getresponse()
        assert resp.status == 200 and resp.getheader("Connection") != "close"
        resp.read()
        t0 = time.monotonic()
        assert silent.recv(1) == b""  # closed by the server, not by the 5 s client timeout
        assert kept.sock.recv(1) == b""
        assert time.monotonic() - t0 < 4
        silent.close()
        kept.close()
    finally:
        server.shutdown()
        server.server_close()


def test_connection_cap_evicts_the_longest_idle(tmp_path):
    systems = _systems(tmp_path)
    out = tmp_path / "s"
    doc = build_survey(systems, None, out, n_raters=1, per_rater=2, aspects=("quality",), trap_method="beep",
                       progress=False)
    server, base = serve_in_thread(out, max_connections=8)
    u = urlsplit(base)
    socks = []
    try:
        for _ in range(40):
            socks.append(socket.create_connection((u.hostname, u.port), timeout=5))
        for _ in range(50):  # the accept loop catches up
            if server.open_connections() <= 8:
                break
            time.sleep(0.05)
        assert server.open_connections() <= 8
        assert socks[0].recv(1) == b""  # the oldest idle one was closed to make room
        token = doc["raters"]["r001"]["token"]
        assert _req(base, "GET", f"/api/session?rater=r001&token={token}")[0] == 200
    finally:
        for s in socks:
            s.close()
        server.shutdown()
        server.server_close()


def test_verbose_log_never_holds_a_token(tmp_path):
    out = tmp_path / "s"
    assert _run(*_build_args(tmp_path, out)).returncode == 0
    proc, base, tokens = _serve(out, "--verbose")
    token = tokens["r001"]
    try:
        assert _req(base, "GET", f"/?rater=r001&token={token}")[0] == 200
        assert _req(base, "GET", f"/api/session?rater=r001&token={token}")[0] == 200
        assert _req(base, "GET", f"/api/session?rater=r001&TOKEN={token}x")[0] == 403
        u = urlsplit(base)
        with socket.create_connection((u.hostname, u.port), timeout=5) as s:  # malformed: logged by log_error
            s.sendall(f"GET /?rater=r001&token={token} HTTP/9\r\n\r\n".encode())
            s.recv(4096)
        _rate(base, "r001", token)
    finally:
        err = _interrupt(proc)
    assert "/api/session" in err and "<redacted>" in err  # it did log the requests
    assert token not in err


# --- failure 11: corrupt ratings.sqlite -----------------------------------------------------------
@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_corrupt_ratings_database_is_one_line_in_serve_and_export(tmp_path, damage):
    out = tmp_path / "s"
    assert _run(*_build_args(tmp_path, out)).returncode == 0
    db = out / "ratings.sqlite"
    if damage == "random":
        db.write_bytes(np.random.default_rng(0).bytes(8192))
    else:
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE ratings (id INTEGER PRIMARY KEY, rater TEXT, stimulus TEXT, aspect TEXT, "
                    "score INTEGER, listen_seconds REAL, played_fraction REAL, playback_complete INTEGER, "
                    "response_seconds REAL, submitted_at TEXT)")
        con.executemany("INSERT INTO ratings (rater, stimulus, aspect, score, playback_complete, submitted_at) "
                        "VALUES (?, ?, 'quality', 3, 1, 'now')", [(f"r{i}", "x" * 200) for i in range(2000)])
        con.commit()
        con.close()
        data = db.read_bytes()
        db.write_bytes(data[:len(data) // 2])
    res = _run("survey", "serve", out, "--port", 0)
    _one_line_error(res, str(db), "corrupt")
    _one_line_error(_run("survey", "export", out, "--out", tmp_path / "r.csv"), str(db), "corrupt")
    assert not (tmp_path / "r.csv").exists()
    # A refused serve does not keep the survey locked.
    assert _run(*_build_args(tmp_path, out), "--force").returncode == 0


# --- issue 24 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_lock_file_planted_as_a_link_is_refused_and_its_target_kept(tmp_path, link):
    """Row 4: SURVEY/.survey.lock -> ~/notes.txt was overwritten by serve, truncated by build --force."""
    from d2m_bench.survey.lock import SurveyLock

    systems = _systems(tmp_path)
    out = tmp_path / "s"
    build_survey(systems, None, out, n_raters=1, per_rater=2, aspects=("quality",), trap_method="beep",
                 progress=False)
    victim = tmp_path / "notes.txt"
    victim.write_text("my notes\n")
    (out / ".survey.lock").unlink(missing_ok=True)
    if link == "symlink":
        (out / ".survey.lock").symlink_to(victim)
    else:
        os.link(victim, out / ".survey.lock")
    with pytest.raises(UserError, match="survey lock file") as err:
        SurveyLock(out, purpose="survey serve")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="survey lock file"):
        build_survey(systems, None, out, n_raters=1, per_rater=2, aspects=("quality",), trap_method="beep",
                     progress=False, force=True)
    _one_line_error(_run("survey", "serve", out, "--port", 0), "survey lock file")
    assert victim.read_text() == "my notes\n"


def test_stimuli_need_the_token_and_are_streamed(tmp_path):
    """Rows 7 and 10: stimuli were served to anyone (sequential names), each request read the
    whole file: 20 readers that stop reading held 20 copies of a 16 MB stimulus. Now a token is
    required and one 64 kB chunk per connection is in memory."""
    out = tmp_path / "s"
    assert _run(*_build_args(tmp_path, out)).returncode == 0
    doc = json.loads((out / "survey.json").read_text())
    sid = doc["raters"]["r001"]["sequence"][0]
    big = out / doc["stimuli"][sid]["file"]
    big.write_bytes(os.urandom(16 * 2**20))
    proc, base, tokens = _serve(out)
    u = urlsplit(base)
    socks = []
    try:
        assert _req(base, "GET", "/" + doc["stimuli"][sid]["file"])[0] == 403

        def rss_kb():
            status = Path(f"/proc/{proc.pid}/status").read_text()
            return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))

        before = rss_kb()
        request = f"GET /{doc['stimuli'][sid]['file']}?rater=r001&token={tokens['r001']} HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(20):
            s = socket.create_connection((u.hostname, u.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(request.encode())
            socks.append(s)
        first = socks[0].recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first[:100]
        time.sleep(1.5)
        grown_mb = (rss_kb() - before) / 1024
        assert grown_mb < 60, f"server grew by {grown_mb:.0f} MB for 20 stalled downloads"
    finally:
        for s in socks:
            s.close()
        _kill(proc)


def test_smuggling_headers_refused_and_encoded_token_redacted(tmp_path):
    """Row 16: Content-Length with Transfer-Encoding was answered by Content-Length;
    ?rater=r&%74oken=T was logged unredacted by --verbose."""
    from d2m_bench.survey.server import redact

    assert "SECRET" not in redact('"GET /api/session?rater=r&%74oken=SECRET HTTP/1.1" 200 -')
    assert "SECRET" not in redact('"GET /api/session?rater=r&%54%4F%4B%45%4E=SECRET HTTP/1.1"')
    assert "rater=r" in redact('"GET /api/session?rater=r&token=SECRET HTTP/1.1"')
    out = tmp_path / "s"
    assert _run(*_build_args(tmp_path, out)).returncode == 0
    proc, base, tokens = _serve(out, "--verbose")
    u = urlsplit(base)
    try:
        body = b'{"rater": "r001"}'
        with socket.create_connection((u.hostname, u.port), timeout=5) as s:
            s.sendall(b"POST /api/rating HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s" % (len(body), body))
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert _req(base, "GET", f"/api/session?rater=r001&%74oken={tokens['r001']}")[0] == 200
    finally:
        err = _interrupt(proc)
    assert "/api/session" in err and tokens["r001"] not in err
