"""The run store: one SQLite file holding every run, revision, LLM call, evaluation and event.

It knows rows, not LLMs or strategies: the search layer decides what to write, this package
owns how it is written (schema, migrations, transactions) and the queries the CLI reads.
"""

from symbiont._errors import StoreError
from symbiont._store._schema import MIGRATIONS, SCHEMA_VERSION
from symbiont._store._store import REDACTED, RunRow, Store, default_store_path, scrub_argv

__all__ = [
    "MIGRATIONS",
    "REDACTED",
    "SCHEMA_VERSION",
    "RunRow",
    "Store",
    "StoreError",
    "default_store_path",
    "scrub_argv",
]
