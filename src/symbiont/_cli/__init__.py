"""The `symbiont` command: run examples, check the machine, run the benchmarks, read runs.

Heavy modules (rich, numpy, llama.cpp) are imported by the subcommand that needs them, so
`symbiont --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from symbiont._errors import StoreError


def shipped_dir(name: str) -> Path:
    """A folder of the repository the wheel ships inside the package as ``symbiont/_<name>``
    (examples, benchmarks); a source checkout has it at the top."""
    packaged = Path(__file__).resolve().parent.parent / f"_{name}"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / name


def examples_dir() -> Path:
    return shipped_dir("examples")


def list_examples() -> list[str]:
    root = examples_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "main.py").is_file())


def example_summary(name: str) -> str:
    """The first line of the example's docstring (what it shows), read without running it."""
    import ast

    script = examples_dir() / name / "main.py"
    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, ValueError):
        doc = None
    return doc.strip().splitlines()[0] if doc else ""


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    try:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, show_time=verbose > 0)
        fmt = "%(message)s"
    except ImportError:  # pragma: no cover - rich is a dependency
        handler = logging.StreamHandler()
        fmt = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("symbiont")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _cmd_example(args: argparse.Namespace) -> int:
    names = list_examples()
    if not args.name:
        if not names:
            print("no examples found")
            return 0
        width = max(map(len, names))
        for name in names:
            print(f"{name:<{width}}  {example_summary(name)}")
        print("\nrun one: symbiont example NAME [-- ARGS]")
        return 0
    if args.name not in names:
        print(f"unknown example {args.name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    script = examples_dir() / args.name / "main.py"
    sys.argv = [str(script), *args.args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from symbiont._cli._doctor import doctor

    return doctor(check_model=not args.no_model)


def _cmd_bench(args: argparse.Namespace) -> int:
    from symbiont._cli._bench import run

    return run(args.names, quick=args.quick)


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from symbiont._serve import serve
    except ImportError as exc:
        print(
            f"symbiont serve needs the serve extra ({exc.name} is missing): "
            "pip install 'symbiont[serve]'",
            file=sys.stderr,
        )
        return 2
    from symbiont._store import Store, default_store_path

    path = Path(args.store) if args.store else default_store_path()
    Store.open_readonly(path).close()  # a bad path fails before any "serving" line
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    if args.host in ("127.0.0.1", "localhost", "::1"):
        print(f"serving {path} at {url} (this machine only; --host 0.0.0.0 to share it)")
    else:
        print(
            f"warning: serving {path} on {args.host}: anyone who can reach this machine can "
            "read every run (code, prompts, replies); there is no login",
            file=sys.stderr,
        )
        print(f"serving {path} at {url}")
    serve(path, host=args.host, port=args.port, interval=args.interval)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symbiont",
        description="Evolve native Rust functions with an LLM inside a running Python process.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command")
    ex = sub.add_parser("example", help="run a bundled example (list them without NAME)")
    ex.add_argument("name", nargs="?", help="example name, e.g. counter or fizzbuzz")
    ex.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the example")
    ex.set_defaults(func=_cmd_example)
    doc = sub.add_parser("doctor", help="check rustc, the local model and the LLM endpoint")
    doc.add_argument("--no-model", action="store_true", help="skip loading the local model")
    doc.set_defaults(func=_cmd_doctor)
    from symbiont._cli._bench import help_text  # stdlib only: keeps --help fast

    bench = sub.add_parser(
        "bench",
        help="run benchmark scripts (all but memory and local_model unless named)",
        description="Run the benchmark scripts, each in its own process, and stream their\n"
        "tables. Without NAMES: all except the long ones (memory, local_model).\n"
        "A target NOT MET is a report: the exit status is non-zero only if a script fails.",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("names", nargs="*", metavar="NAMES", help="benchmarks to run")
    bench.add_argument("--quick", action="store_true", help="shorter runs")
    bench.set_defaults(func=_cmd_bench)
    srv = sub.add_parser("serve", help="a live web page of the runs in a store (serve extra)")
    srv.add_argument("store", nargs="?", help="the store file (default: runs.db in the cache dir)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    srv.add_argument(
        "--interval", type=float, default=2.0, help="seconds between page updates (default 2)"
    )
    srv.set_defaults(func=_cmd_serve)
    from symbiont._cli._runs import add_commands  # stdlib + the store only

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from symbiont import __version__

        print(f"symbiont {__version__}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    # The store commands print their own output: no logging setup (rich) on their path.
    reads_store = args.func.__module__ == "symbiont._cli._runs"
    if os.environ.get("SYMBIONT_LOG", "1") != "0" and not reads_store:
        _configure_logging(args.verbose)
    try:
        result: int = args.func(args)
    except StoreError as exc:
        print(f"symbiont: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        # A damaged file (a disk error, a copy cut short) reaches here from any query.
        print(
            f"symbiont: the run store is damaged ({exc}): check it with "
            "`sqlite3 FILE 'PRAGMA integrity_check'` or restore a copy",
            file=sys.stderr,
        )
        return 1
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
