"""The set of request ids already labelled by feedback on this replica: bounded, with a TTL.

Kept in a SQLite file in the replica's own directory (FEEDBACK_STORE_DIR, by default the
Prometheus multiprocess dir), so all gunicorn workers of the replica share it and a restart keeps
it. It is no shared database: each replica has its own file and only decides for the ids it
owns (see feedback.py). Entries live until their id would expire anyway (issued + TTL), so an
id can never be labelled twice while it is still accepted. Without a directory (a single dev
process) the set is kept in memory.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time

FILE_NAME = "feedback-labelled.sqlite"  # not *.db: gunicorn.conf.py wipes those at start


class StoreFull(RuntimeError):
    """No room for one more id before old ones expire: refusing is safer than forgetting."""


class LabelledSet:
    def __init__(self, directory: str | None, max_entries: int = 1_000_000, clock=time.time):
        self.max_entries = max_entries
        self.clock = clock
        self.path = os.path.join(directory, FILE_NAME) if directory else None
        self._local = threading.local()
        self._memory: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._since_prune = 0
        self._count: int | None = None

    def _db(self) -> sqlite3.Connection:
        # One connection per thread and process (sqlite3 connections must not cross forks).
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS labelled (id BLOB PRIMARY KEY, expires REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS labelled_expires ON labelled (expires)")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @staticmethod
    def _digest(request_id: str) -> bytes:
        return hashlib.sha256(request_id.encode()).digest()[:16]

    def add(self, request_id: str, expires_at: float) -> bool:
        """True if the id was not labelled yet (and now is); False for a duplicate."""
        key = self._digest(request_id)
        now = self.clock()
        if self.path is None:
            with self._lock:
                if len(self._memory) >= self.max_entries:
                    for k in [k for k, exp in self._memory.items() if exp < now]:
                        del self._memory[k]
                    if len(self._memory) >= self.max_entries:
                        raise StoreFull("the labelled-id store is full (FEEDBACK_DEDUPE_MAX)")
                if key in self._memory and self._memory[key] >= now:
                    return False
                self._memory[key] = expires_at
                return True
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # one writer at a time across the workers
        try:
            row = db.execute("SELECT expires FROM labelled WHERE id = ?", (key,)).fetchone()
            if row is not None and row[0] >= now:
                db.execute("COMMIT")
                return False
            # Counting a big table on every insert is slow: count at most every 512 inserts of
            # this worker (the bound may be overshot by that much per worker).
            self._since_prune += 1
            if self._since_prune >= 512 or self._count is None or self._count >= self.max_entries:
                self._since_prune = 0
                db.execute("DELETE FROM labelled WHERE expires < ?", (now,))
                (self._count,) = db.execute("SELECT count(*) FROM labelled").fetchone()
                if self._count >= self.max_entries:
                    db.execute("ROLLBACK")
                    raise StoreFull("the labelled-id store is full (FEEDBACK_DEDUPE_MAX)")
            self._count += 1
            db.execute("INSERT OR REPLACE INTO labelled (id, expires) VALUES (?, ?)", (key, expires_at))
            db.execute("COMMIT")
            return True
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
