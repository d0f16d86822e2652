"""Concurrent simulated raters against a running survey server (tests and `make bench`).

Each simulated rater opens one keep-alive HTTP connection, fetches its session, submits a
rating for every stimulus, then submits its first one again (must be refused with 409).
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

import numpy as np


def _rater_run(host, port, rater, token, seed, out, barrier):
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    lat, statuses = [], []

    def call(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        t0 = time.perf_counter()
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        lat.append(time.perf_counter() - t0)
        statuses.append(resp.status)
        return resp.status, payload

    barrier.wait()
    try:
        status, payload = call("GET", f"/api/session?rater={rater}&token={token}")
        items = json.loads(payload)["items"] if status == 200 else []
        accepted = []
        for it in items:
            body = {"rater": rater, "token": token, "stimulus": it["id"], "aspect": it["aspect"],
                    "score": int(rng.integers(1, 6)), "playback_complete": True, "played_fraction": 1.0,
                    "listen_seconds": 2.0, "response_seconds": float(rng.uniform(2, 9))}
            status, _ = call("POST", "/api/rating", body)
            if status == 201:
                accepted.append((it["id"], body["score"]))
        dup_status = call("POST", "/api/rating", {**body, "stimulus": items[0]["id"], "aspect": items[0]["aspect"]})[0] if items else None
        out[rater] = {"accepted": accepted, "n_items": len(items), "duplicate_status": dup_status,
                      "latencies": lat, "statuses": statuses}
    except Exception as exc:  # recorded, never hidden: the check fails on any missing rater
        out[rater] = {"error": repr(exc), "latencies": lat, "statuses": statuses}
    finally:
        conn.close()


def simulate_raters(base_url: str, raters: dict, *, seed: int = 0) -> dict:
    """Run every rater of ``raters`` ({id: {"token": ...}}) at once, one thread each.

    Returns per-rater results plus totals: requests, seconds, requests_per_s, p50/p95/max latency (ms).
    """
    url = urlsplit(base_url)
    out: dict = {}
    barrier = threading.Barrier(len(raters) + 1)
    threads = [threading.Thread(target=_rater_run, args=(url.hostname, url.port, r, info["token"], seed + k, out, barrier))
               for k, (r, info) in enumerate(raters.items())]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    lat = np.array([x for r in out.values() for x in r["latencies"]]) * 1000
    return {"raters": out, "requests": int(len(lat)), "seconds": seconds,
            "requests_per_s": len(lat) / seconds if seconds else float("nan"),
            "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "latency_ms_p95": float(np.percentile(lat, 95)) if len(lat) else float("nan"),
            "latency_ms_max": float(lat.max()) if len(lat) else float("nan"),
            "errors": {r: v["error"] for r, v in out.items() if "error" in v}}
