"""Persistent request cache: full request -> raw teacher text, in SQLite.

Keyed by the teacher's identity and the whole request (messages, sampling parameters, meta), so a
killed run resumes without paying for any request twice. API keys are never part of a request.
Each answer is committed on its own the moment it is put (autocommit, WAL), so a SIGKILL loses
only answers not yet put; the key is the primary key, so a row is never stored twice. The token
usage the server reported is kept with the answer (column `usage`, JSON or NULL).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from hominem.config import stable_hash
from hominem.store.registry import now_iso


def request_key(teacher_name: str, request) -> str:
    return stable_hash({"teacher": teacher_name, "request": request.to_dict()})


class RequestCache:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=30000")  # another process may be writing the same cache
        self._db.execute("PRAGMA journal_mode=WAL")
        # A commit is in the WAL (the OS's hands) when put() returns, so it survives SIGKILL of this
        # process; only a power loss could drop the last few. FULL would fsync every answer (~3 ms each).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, teacher TEXT, "
                         "request TEXT, response TEXT, created_at TEXT, usage TEXT)")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        if "usage" not in columns:  # a cache written before usage was recorded
            try:
                self._db.execute("ALTER TABLE responses ADD COLUMN usage TEXT")
            except sqlite3.OperationalError:  # another process added it first
                pass

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, teacher: str, request, response: str, usage: dict | None = None) -> None:
        with self._lock:  # each insert commits at once (autocommit): a kill loses at most the one in flight
            self._db.execute("INSERT OR IGNORE INTO responses (key, teacher, request, response, created_at, usage) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (key, teacher, json.dumps(request.to_dict(), sort_keys=True), response, now_iso(),
                              json.dumps(usage, sort_keys=True) if usage else None))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
