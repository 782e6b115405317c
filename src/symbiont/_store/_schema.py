"""The store's schema as named, append-only migrations.

A store records which migrations it has applied (table ``migrations``, and ``PRAGMA
user_version`` as their count). Never edit or reorder a released migration: append a new one.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            task TEXT NOT NULL,
            declarations TEXT NOT NULL,
            settings TEXT NOT NULL,          -- JSON: strategy, budget, repeats, maximize, ...
            argv TEXT NOT NULL,              -- JSON: the command line that started the run
            cwd TEXT NOT NULL,
            declarations_hash TEXT NOT NULL,
            evaluator_hash TEXT NOT NULL,
            status TEXT NOT NULL,            -- running | interrupted | finished | failed
            stop_reason TEXT,
            state TEXT,                      -- JSON: strategy state, RNG, counters at round end
            best_revision INTEGER,
            best_score REAL,
            rounds INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE revisions (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            number INTEGER NOT NULL,         -- per run: 0 is the seed
            code TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            parent INTEGER,
            round INTEGER NOT NULL,
            lane INTEGER,
            island INTEGER,
            score REAL,
            metrics TEXT NOT NULL,           -- JSON
            spread REAL,
            feedback TEXT,
            status TEXT NOT NULL,            -- scored | failed
            created REAL NOT NULL,
            UNIQUE (run_id, number),
            UNIQUE (run_id, content_hash)
        );
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            round INTEGER NOT NULL,
            lane INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            prompt TEXT NOT NULL,            -- JSON: the messages sent
            reply TEXT,
            model TEXT,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cost REAL NOT NULL,
            timings TEXT NOT NULL,           -- JSON: seconds per stage
            outcome TEXT NOT NULL,
            decision TEXT NOT NULL,
            failure_kind TEXT,
            feedback TEXT,
            revision INTEGER,
            started REAL NOT NULL
        );
        CREATE INDEX attempts_by_run ON attempts (run_id, id);
        CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            revision INTEGER,
            round INTEGER NOT NULL,
            lane INTEGER,
            repeat INTEGER NOT NULL,
            purpose TEXT NOT NULL,           -- candidate | confirm
            score REAL,
            metrics TEXT NOT NULL,
            seconds REAL NOT NULL,
            outcome TEXT NOT NULL,           -- scored | rejected | panic | timeout | crash
            feedback TEXT,
            created REAL NOT NULL
        );
        CREATE INDEX evaluations_by_run ON evaluations (run_id, revision);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            time REAL NOT NULL,
            kind TEXT NOT NULL,
            round INTEGER,
            lane INTEGER,
            data TEXT NOT NULL               -- JSON
        );
        CREATE INDEX events_by_run ON events (run_id, kind, round);
        """,
    ),
    (
        # `symbiont show` sums attempts per round: a covering index reads it without touching
        # the prompt and reply texts (a 10,000-attempt run: 40 ms -> a few ms).
        "0002_attempts_per_round",
        """
        CREATE INDEX attempts_per_round ON attempts
            (run_id, round, lane, prompt_tokens, completion_tokens, cost, failure_kind);
        """,
    ),
)

MIGRATIONS += (
    (
        # A resumed lane replays its recorded replies; a reply cut at the length limit gets
        # another correction than a complete one, so the reason is kept.
        "0003_attempt_finish_reason",
        "ALTER TABLE attempts ADD COLUMN finish_reason TEXT;",
    ),
)

MIGRATIONS += (
    (
        # A failure is stored as its facts (kind, message, line, column, excerpt, details, ...)
        # in JSON, not only as the text the LLM read: a replayed attempt gets the same record
        # back (so the same correction), and the wording can change without rewriting runs.
        "0004_failure_facts",
        """
        ALTER TABLE attempts ADD COLUMN failure TEXT;
        ALTER TABLE evaluations ADD COLUMN failure TEXT;
        """,
    ),
)

MIGRATIONS += (
    (
        # Evaluations run in isolation workers, on this machine or on a cluster's nodes: where
        # each one ran (node: "local" or a Ray node id; worker: its process id) tells a slow or
        # failing node apart from a slow or failing candidate. NULL: in the searching process.
        "0005_evaluation_node_worker",
        """
        ALTER TABLE evaluations ADD COLUMN node TEXT;
        ALTER TABLE evaluations ADD COLUMN worker INTEGER;
        """,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
