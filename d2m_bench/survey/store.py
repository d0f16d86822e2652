"""Ratings store: SQLite in WAL mode, one row per (rater, stimulus, aspect), committed on receipt."""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY,
    rater TEXT NOT NULL,
    stimulus TEXT NOT NULL,
    aspect TEXT NOT NULL,
    score INTEGER NOT NULL,
    listen_seconds REAL,
    played_fraction REAL,
    playback_complete INTEGER NOT NULL,
    response_seconds REAL,
    submitted_at TEXT NOT NULL,
    UNIQUE (rater, stimulus, aspect)
);
"""
FIELDS = ("rater", "stimulus", "aspect", "score", "listen_seconds", "played_fraction", "playback_complete",
          "response_seconds", "submitted_at")


class DuplicateRating(Exception):
    pass


class RatingStore:
    """Thread-safe: one connection, one lock. Each insert is its own committed transaction
    (synchronous=FULL), so stopping the server never loses an acknowledged rating."""

    def __init__(self, path, *, readonly: bool = False):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = None
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA busy_timeout=5000")
                self._db.executescript(SCHEMA)
            self._check()
        except sqlite3.Error as exc:
            self.close()
            raise UserError(f"corrupt or unreadable ratings database ({exc}); move it aside to start afresh",
                            self.path) from None

    def _check(self) -> None:
        """Refuse a damaged file before serving from it: a truncated database opens fine and only
        fails on the pages it lost, which would be the middle of a rater's session."""
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"integrity check: {problems[0]}")
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(ratings)")}
        missing = [f for f in FIELDS if f not in columns]
        if missing:
            raise sqlite3.DatabaseError(f"table ratings lacks column(s) {', '.join(missing)}")

    def add(self, rating: dict) -> None:
        row = {**rating, "submitted_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        with self._lock:
            try:
                self._db.execute(f"INSERT INTO ratings ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})",
                                 [row[f] for f in FIELDS])
            except sqlite3.IntegrityError:
                raise DuplicateRating(rating["stimulus"]) from None

    def done(self, rater: str) -> list:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT stimulus FROM ratings WHERE rater = ? ORDER BY id", (rater,))]

    def all(self) -> list:
        with self._lock:
            try:
                cur = self._db.execute(f"SELECT {', '.join(FIELDS)} FROM ratings ORDER BY id")
                return [dict(zip(FIELDS, r)) for r in cur]
            except sqlite3.Error as exc:
                raise UserError(f"corrupt or unreadable ratings database ({exc})", self.path) from None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
