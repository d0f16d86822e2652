"""`survey serve`: the listening-test web server (stdlib ThreadingHTTPServer).

Routes::

    GET  /                      the page (static/index.html); the rater comes in on ?rater=ID&token=T
    GET  /static/NAME           app.js, style.css
    GET  /stimuli/NAME          a stimulus file of the rater's list (Range requests served, for media
                                seeking); the rater and token come as ?rater=&token= or as the
                                cookie /api/session sets, and the file is streamed in chunks
    GET  /api/session?rater=&token=   the rater's items (opaque ids, media type, url) and what is done
    POST /api/rating            {rater, token, stimulus, aspect, score, listen_seconds, played_fraction,
                                 playback_complete, response_seconds}: 201 stored, 409 duplicate,
                                 400 malformed, 403 bad token, 404 stimulus not the rater's

The page never learns the system, the item or whether a stimulus is a check. Every request
gets an HTTP answer: a request the handlers did not foresee gets 500 (JSON) and one line on
stderr, never a dropped connection.
"""
from __future__ import annotations

import hmac
import json
import math
import mimetypes
import re
import resource
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .build import STATIC_FILES, load_survey
from .lock import SurveyLock
from .store import DuplicateRating, RatingStore

MAX_BODY = 4096
IDLE_TIMEOUT = 20.0  # seconds a connection may wait for a request, or stall within one
MAX_CONNECTIONS = 512  # open connections (= handler threads) at once; see SurveyServer
FD_RESERVE = 64  # descriptors kept free of connections: listening socket, SQLite, stimulus files
SEND_CHUNK = 64 * 1024
# A query parameter whose name, once percent-decoded, is "token" (``%74oken=`` too).
_PARAM = re.compile(r"(?<=[?&;\s])([^=&;\s\"']+)=([^&;\s\"']*)")
COOKIE = "d2m_rater"

# playback_complete true claims the clip played to its end; a played fraction below this
# contradicts the claim (the page reports 1.0 once the media fired "ended").
COMPLETE_FRACTION = 0.99
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TYPES = {".mp4": "video/mp4", ".wav": "audio/wav", ".m4a": "audio/mp4", ".html": "text/html; charset=utf-8",
          ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Survey:
    """The loaded survey: stimuli, raters and their assignment, the ratings store."""

    def __init__(self, folder):
        self.folder = Path(folder).resolve()
        self.doc = load_survey(self.folder)
        self.stimuli_dir = (self.folder / "stimuli").resolve()
        self.static_dir = (self.folder / "static").resolve()
        # Held until close(): `survey build --force` refuses to replace a survey being served.
        self.lock = SurveyLock(self.folder, purpose="survey serve")
        try:
            self.store = RatingStore(self.folder / "ratings.sqlite")
        except BaseException:
            self.lock.release()
            raise
        self.assigned = {r: set(v["sequence"]) for r, v in self.doc["raters"].items()}
        self.scale = self.doc["scale"]

    def close(self) -> None:
        self.store.close()
        self.lock.release()

    def check_rater(self, rater, token):
        info = self.doc["raters"].get(rater) if isinstance(rater, str) else None
        # Tokens are ASCII (token_urlsafe); compare_digest refuses non-ASCII str, so anything
        # else is simply a wrong token, and the comparison runs on bytes.
        if (info is None or not isinstance(token, str) or not token.isascii()
                or not hmac.compare_digest(info["token"].encode("ascii"), token.encode("ascii"))):
            raise BadRequest(HTTPStatus.FORBIDDEN, "unknown rater or wrong token")
        return info

    def session(self, rater, token) -> dict:
        info = self.check_rater(rater, token)
        items = [{"id": sid, "aspect": self.doc["stimuli"][sid]["aspect"],
                  "media": self.doc["aspects"][self.doc["stimuli"][sid]["aspect"]]["media"],
                  "url": "/" + self.doc["stimuli"][sid]["file"]} for sid in info["sequence"]]
        return {"rater": rater, "scale": self.scale, "aspects": self.doc["aspects"],
                "instructions": self.doc["instructions"], "require_full_playback": self.doc["require_full_playback"],
                "items": items, "done": self.store.done(rater)}

    def rate(self, body: dict) -> dict:
        if not isinstance(body, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        self.check_rater(body.get("rater"), body.get("token"))
        rater, sid = body["rater"], body.get("stimulus")
        if not isinstance(sid, str) or sid not in self.assigned[rater]:
            raise BadRequest(HTTPStatus.NOT_FOUND, "stimulus is not in this rater's list")
        aspect = self.doc["stimuli"][sid]["aspect"]
        if body.get("aspect") != aspect:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "aspect does not match the stimulus")
        score = body.get("score")
        if type(score) is not int or not self.scale["min"] <= score <= self.scale["max"]:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"score must be a whole number {self.scale['min']}..{self.scale['max']}")
        complete = body.get("playback_complete")
        if type(complete) is not bool:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "playback_complete must be true or false")
        numbers = {}
        for key, hi in (("listen_seconds", 86400.0), ("played_fraction", 1.0), ("response_seconds", 86400.0)):
            v = body.get(key)
            if type(v) not in (int, float) or not math.isfinite(v) or not 0 <= v <= hi:
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"{key} must be a number in 0..{hi:g}")
            numbers[key] = float(v)
        if complete and numbers["played_fraction"] < COMPLETE_FRACTION:
            raise BadRequest(HTTPStatus.BAD_REQUEST,
                             f"playback_complete is true but played_fraction is below {COMPLETE_FRACTION:g}")
        try:
            self.store.add({"rater": rater, "stimulus": sid, "aspect": aspect, "score": score,
                            "playback_complete": int(complete), **numbers})
        except DuplicateRating:
            raise BadRequest(HTTPStatus.CONFLICT, "this stimulus was already rated by this rater") from None
        return {"ok": True, "done": len(self.store.done(rater)), "total": len(self.assigned[rater])}

    def stimulus_for(self, rater, token, name: str) -> Path:
        """The stimulus file ``name`` when it is on the list of the rater whose token is given."""
        path = self.file_under(self.stimuli_dir, name)
        self.check_rater(rater, token)
        sid = path.stem
        if sid not in self.assigned[rater] or self.doc["stimuli"][sid]["file"] != f"stimuli/{path.name}":
            raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
        return path

    def file_under(self, base: Path, name: str) -> Path:
        """The file ``name`` inside ``base``, or NOT_FOUND (no traversal, no folders, no links out)."""
        name = unquote(name)
        if not name or "\x00" in name:
            raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
        try:
            path = (base / name).resolve()
            found = path.is_relative_to(base) and path.is_file()
        except (OSError, RuntimeError, ValueError):  # name too long, link loop, bad characters
            found = False
        if not found:
            raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
        return path


def redact(text: str) -> str:
    """``text`` with every rater token replaced (log lines quote request lines, which carry them).
    The parameter name is compared after percent-decoding: ``%74oken=T`` is the token too."""
    def one(m):
        name = unquote(m.group(1).replace("+", " ")).strip().lower()
        return f"{m.group(1)}=<redacted>" if name in ("token", COOKIE) else m.group(0)

    return _PARAM.sub(one, text)


class Handler(BaseHTTPRequestHandler):
    server_version = "d2m-bench-survey"
    protocol_version = "HTTP/1.1"
    survey: Survey = None  # set by make_server
    quiet = True
    # Per socket operation (StreamRequestHandler.setup applies it): an idle keep-alive connection,
    # or a client that stops sending mid-request, is closed after this many seconds.
    timeout = IDLE_TIMEOUT

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write(redact(f"{self.address_string()} - - [{self.log_date_time_string()}] {fmt % args}") + "\n")

    def handle_one_request(self):
        # Waiting for (the rest of) a request: the server may evict this connection for a new one.
        self.server.track(self.connection, waiting=True)
        super().handle_one_request()

    def _send(self, status, body: bytes, ctype: str, extra=None):
        self._answered = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            # In pieces: the socket timeout bounds each send, so a slow but live download of a
            # video is not cut off, while a client that stopped reading is.
            view = memoryview(body)
            for start in range(0, len(body), SEND_CHUNK):
                self.wfile.write(view[start:start + SEND_CHUNK])

    def _json(self, status, obj):
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _file(self, path: Path):
        data_len = path.stat().st_size
        ctype = _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        start, end, status = 0, data_len - 1, HTTPStatus.OK
        rng = self.headers.get("Range")
        if rng:
            m = _RANGE.match(rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                return self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "text/plain",
                                  {"Content-Range": f"bytes */{data_len}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), data_len - 1) if m.group(2) else data_len - 1
            else:  # suffix range: the last N bytes
                start = max(0, data_len - int(m.group(2)))
            if start > end or start >= data_len:
                return self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "text/plain",
                                  {"Content-Range": f"bytes */{data_len}"})
            status = HTTPStatus.PARTIAL_CONTENT
        extra = {"Accept-Ranges": "bytes"}
        if status == HTTPStatus.PARTIAL_CONTENT:
            extra["Content-Range"] = f"bytes {start}-{end}/{data_len}"
        self._stream(status, path, start, end - start + 1, ctype, extra)

    def _stream(self, status, path: Path, start: int, length: int, ctype: str, extra: dict):
        # One chunk in memory per connection, however large the file and however slow the
        # reader: 30 slow downloads of a 17 MB stimulus once held 30 copies of it.
        with open(path, "rb") as fh:
            fh.seek(start)
            self._answered = True
            self.send_response(status)
            for k, v in {"Content-Type": ctype, "Content-Length": str(length), "Cache-Control": "no-store",
                         "X-Content-Type-Options": "nosniff", **extra}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            while length > 0:
                chunk = fh.read(min(SEND_CHUNK, length))
                if not chunk:  # the file shrank under us: the connection cannot be trusted further
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                length -= len(chunk)

    def _route_get(self):
        url = urlsplit(self.path)
        s = self.survey
        if url.path in ("/", "/index.html"):
            return self._file(s.static_dir / "index.html")
        if url.path.startswith("/static/"):
            name = url.path[len("/static/"):]
            if name not in STATIC_FILES:
                raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
            return self._file(s.file_under(s.static_dir, name))
        if url.path.startswith("/stimuli/"):
            name = url.path[len("/stimuli/"):]
            s.file_under(s.stimuli_dir, name)  # not a stimulus: 404 before any token question
            return self._file(s.stimulus_for(*self._credentials(url), name))
        if url.path == "/api/session":
            q = parse_qs(url.query)
            rater, token = q.get("rater", [None])[0], q.get("token", [None])[0]
            doc = s.session(rater, token)
            # The media elements of the page cannot add a query; the cookie carries the token.
            cookie = f"{COOKIE}={rater}:{token}; Path=/stimuli/; HttpOnly; SameSite=Strict"
            return self._send(HTTPStatus.OK, json.dumps(doc).encode(), "application/json", {"Set-Cookie": cookie})
        raise BadRequest(HTTPStatus.NOT_FOUND, "not found")

    def _credentials(self, url):
        q = parse_qs(url.query)
        if "token" in q:
            return q.get("rater", [None])[0], q["token"][0]
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and ":" in value:
                return tuple(value.split(":", 1))
        raise BadRequest(HTTPStatus.FORBIDDEN, "stimuli need the rater's token")

    def _handle(self, route):
        self._answered = False
        if self.headers.get("Transfer-Encoding") is not None:
            # With Content-Length beside it, a proxy and this server may disagree on where the
            # body ends (request smuggling); chunked bodies are not used by the page at all.
            self.close_connection = True
            status = HTTPStatus.BAD_REQUEST if self.headers.get("Content-Length") is not None \
                else HTTPStatus.LENGTH_REQUIRED
            return self._json(status, {"ok": False, "error": "Transfer-Encoding is not accepted"})
        if self.command != "POST":  # a POST counts as waiting until its body is in, see do_POST
            self.server.track(self.connection, waiting=False)
        try:
            route()
        except BadRequest as exc:
            self._json(exc.status, {"ok": False, "error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # last resort: answer, log one line, keep serving
            self.close_connection = True
            where = urlsplit(self.path).path[:120]  # never the query: it holds the token
            sys.stderr.write(f"survey server: {self.command} {where}: internal error "
                             f"({exc.__class__.__name__}: {str(exc)[:200]})\n")
            if not self._answered:  # a half-sent answer cannot be replaced; the connection closes
                try:
                    self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"ok": False, "error": "internal server error"})
                except OSError:
                    pass

    def do_GET(self):
        self._handle(self._route_get)

    def do_HEAD(self):
        self._handle(self._route_get)

    def do_POST(self):
        def route():
            if urlsplit(self.path).path != "/api/rating":
                raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length required") from None
            if not 0 < length <= MAX_BODY:
                self.close_connection = True
                raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > MAX_BODY else HTTPStatus.BAD_REQUEST,
                                 "body missing or too large")
            raw = self.rfile.read(length)
            self.server.track(self.connection, waiting=False)
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: a few thousand nested brackets
                raise BadRequest(HTTPStatus.BAD_REQUEST, "body is not JSON") from None
            self._json(HTTPStatus.CREATED, self.survey.rate(body))
        self._handle(route)


class SurveyServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them.

    When the cap is reached, a new connection evicts the connection that has waited longest for
    a request (an idle keep-alive connection, or one that opened and sent nothing or half a
    request): real raters, whose requests arrive at once, are served, and a flood of idle
    connections can neither exhaust the file descriptors (the cap stays below the descriptor
    limit) nor the threads. Only when every connection is mid-request is a new one refused.
    """

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address, handler, *, max_connections: int = MAX_CONNECTIONS):
        self.max_connections = max(1, min(max_connections, _descriptor_budget()))
        self._conn_lock = threading.Lock()
        self._conns: dict = {}  # socket -> (waiting for a request?, since when)
        super().__init__(address, handler)

    def track(self, sock, *, waiting: bool) -> None:
        """Mark a connection as waiting for (the rest of) a request, or busy answering one. The
        waiting time counts from when it started to wait (accept, or the end of its last answer)."""
        with self._conn_lock:
            state = self._conns.get(sock)
            if state is not None and not (waiting and state[0]):
                self._conns[sock] = (waiting, time.monotonic())

    def open_connections(self) -> int:
        with self._conn_lock:
            return len(self._conns)

    def process_request(self, request, client_address):
        with self._conn_lock:
            if len(self._conns) >= self.max_connections:
                waiting = [(t, s) for s, (w, t) in self._conns.items() if w]
                if not waiting:
                    refuse = True
                else:
                    refuse = False
                    _, victim = min(waiting, key=lambda ts: ts[0])
                    self._conns.pop(victim)
                    try:  # wakes the thread blocked reading it; that thread closes it
                        victim.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            else:
                refuse = False
            if not refuse:
                self._conns[request] = (True, time.monotonic())
        if refuse:
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conn_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def server_close(self):
        super().server_close()
        survey = getattr(self.RequestHandlerClass, "survey", None)
        if survey is not None:
            survey.close()


def _descriptor_budget() -> int:
    """Connections the process can hold open and still accept, read stimuli and write SQLite."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else max(8, soft - FD_RESERVE)


def raise_descriptor_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (at most 65536); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def make_server(folder, *, host="127.0.0.1", port=8000, quiet=True, idle_timeout: float = IDLE_TIMEOUT,
                max_connections: int = MAX_CONNECTIONS) -> SurveyServer:
    survey = Survey(folder)
    handler = type("BoundHandler", (Handler,), {"survey": survey, "quiet": quiet, "timeout": idle_timeout})
    try:
        return SurveyServer((host, port), handler, max_connections=max_connections)
    except BaseException:
        survey.close()
        raise


def serve_in_thread(folder, *, host="127.0.0.1", port=0, **options):
    """Start a server on a background thread (tests, benchmarks); returns (server, base_url)."""
    server = make_server(folder, host=host, port=port, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    h, p = server.server_address[:2]
    return server, f"http://{h}:{p}"
