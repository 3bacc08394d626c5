"""Persistent request cache: full request -> raw teacher text, in SQLite.

Keyed by the teacher's identity and the whole request (messages, sampling parameters, meta), so a
killed run resumes without paying for any request twice. API keys are never part of a request.
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
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, teacher TEXT, "
                         "request TEXT, response TEXT, created_at TEXT)")

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, teacher: str, request, response: str) -> None:
        with self._lock:  # each insert commits at once (autocommit): a kill loses at most the one in flight
            self._db.execute("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?)",
                             (key, teacher, json.dumps(request.to_dict(), sort_keys=True), response, now_iso()))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
