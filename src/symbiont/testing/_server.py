"""A real HTTP server speaking the OpenAI chat-completions protocol, answering from a script.

This module owns the wire format of the replies (OpenAI's JSON shapes for completions,
server-sent-event streams for ``"stream": true`` requests, tool calls and errors) and the
transport faults a test can script: error statuses, malformed bodies, dropped connections,
hangs before the headers (:class:`Hang`) or in the middle of a stream (:class:`Stall`), latency,
and refusing connections for a while (:meth:`pause`).
"""

from __future__ import annotations

import errno
import http
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypeAlias
from urllib.parse import urlsplit

logger = logging.getLogger("symbiont.testing")

DEFAULT_MODEL = "symbiont-test-model"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the scripted model makes: ``arguments`` is sent JSON-encoded (a ``str`` is
    sent as is, so a test can send arguments that are not valid JSON). ``id`` defaults to a
    fresh ``call_N``."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    _: KW_ONLY
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Text:
    """A normal completion. Token counts default to rough word counts of prompt and reply.

    ``content=None`` sends ``"content": null`` (what servers send with tool calls).
    ``tool_calls`` makes the model call tools (``finish_reason`` then defaults to
    ``"tool_calls"``). A streaming request gets the content in pieces of ``chunk_chars``
    characters (default: 16, or larger pieces so that a long text takes at most 256 chunks),
    ``chunk_delay`` seconds apart.
    """

    content: str | None
    _: KW_ONLY
    finish_reason: str | None = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    delay: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()
    chunk_chars: int | None = None
    chunk_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Status:
    """An error status with an OpenAI-style body ``{"error": {"message", "type", "code"}}``.

    ``headers`` are added to the response (``{"Retry-After": "2"}``). Without ``message``
    the status phrase is sent; without ``error_type`` OpenAI's usual type for the status.
    """

    code: int
    _: KW_ONLY
    message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    headers: Mapping[str, str] | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Malformed:
    """A response whose body is sent as is (by default: not JSON, with a JSON content type)."""

    body: str = "{not json"
    _: KW_ONLY
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without sending anything (the client sees a disconnect)."""

    _: KW_ONLY
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Hang:
    """Accept the request, send nothing for ``seconds``, then close the connection."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Stall:
    """Send the response headers of a stream and the first ``content``, then nothing for
    ``seconds``, then close the connection (a stream that started and went silent).

    A request that did not ask for a stream gets the headers of a JSON answer and no body.
    """

    seconds: float
    _: KW_ONLY
    content: str = ""


ServerReply: TypeAlias = str | Text | Status | Malformed | Drop | Hang | Stall
"""One scripted answer; a plain ``str`` is a normal completion with that content."""

ServerItem: TypeAlias = ServerReply | Callable[[dict[str, Any]], ServerReply]
"""A scripted answer, or a function computing it from the request's JSON body."""


def rough_token_count(text: str) -> int:
    """A cheap stand-in for a tokenizer: the number of whitespace-separated words."""
    return len(text.split())


class OpenAITestServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 that answers from a script.

    Each ``POST /v1/chat/completions`` consumes the next item of ``script``: a ``str`` or
    :class:`Text` (a completion, possibly with :class:`ToolCall` s), :class:`Status` (an error
    status), :class:`Malformed` (a broken body), :class:`Drop` (connection closed without an
    answer), :class:`Hang` (no answer for a while), :class:`Stall` (a stream that goes silent),
    or a callable that receives the request's JSON body and returns one of those. A request
    with ``"stream": true`` is answered with server-sent events (``text/event-stream``, chunks
    of ``chat.completion.chunk``, a usage chunk when ``stream_options.include_usage`` is set,
    then ``data: [DONE]``), as OpenAI does.
    When the script is exhausted the server answers 500 and says so. ``GET /v1/models`` lists
    ``model``. Every request runs on its own thread, so delayed answers overlap.

    Use it as a context manager::

        with OpenAITestServer(["fn step() {}", Status(429, headers={"Retry-After": "0"})]) as s:
            agent = OpenAIAgent(base_url=s.base_url, model="test")
            ...
            assert s.requests[0]["messages"][0]["role"] == "system"

    or call :meth:`start` and :meth:`close`. ``requests`` holds the JSON bodies received (in
    arrival order) and ``request_headers`` their headers; :meth:`pause` refuses connections
    for a while, as a restarting server does.
    """

    def __init__(self, script: Iterable[ServerItem] = (), *, model: str = DEFAULT_MODEL) -> None:
        self.model = model
        self._script: Iterator[ServerItem] = iter(script)
        self._lock = threading.Lock()
        self._served = 0
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._port: int | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._resume_timer: threading.Timer | None = None
        self._serving = threading.Event()
        # Set on close: wakes delayed and hanging handlers so no thread outlives the server.
        self._closed = threading.Event()
        self._ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind an ephemeral port on 127.0.0.1 and start serving in a daemon thread."""
        if self._closed.is_set():
            raise RuntimeError("OpenAITestServer: closed servers cannot be restarted")
        if self._httpd is None:
            self._bind(self._port or 0)
        return self

    def close(self) -> None:
        """Stop serving and release the port. Hanging handlers are woken and end."""
        self._closed.set()
        with self._lock:
            timer, self._resume_timer = self._resume_timer, None
        if timer is not None:
            timer.cancel()
        self._stop_listening()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def pause(self, seconds: float | None = None) -> None:
        """Refuse connections: close the listening socket, and re-bind the same port after
        ``seconds`` in a background thread (never, when ``None``: call :meth:`resume`).

        Requests already being answered complete normally.
        """
        if self._port is None:
            raise RuntimeError("OpenAITestServer: pause() before start()")
        self._stop_listening()
        if seconds is not None:
            timer = threading.Timer(seconds, self._resume_quietly)
            timer.daemon = True
            with self._lock:
                self._resume_timer = timer
            timer.start()

    def resume(self) -> None:
        """Accept connections again on the same port (after :meth:`pause`)."""
        if self._port is None:
            raise RuntimeError("OpenAITestServer: resume() before start()")
        if self._closed.is_set():
            return
        if self._httpd is None:
            self._bind(self._port)

    def wait_until_serving(self, timeout: float = 5.0) -> bool:
        """Block until the server accepts connections (e.g. after a timed pause)."""
        return self._serving.wait(timeout)

    # -- what tests look at ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("OpenAITestServer: not started; use it in a with block or start()")
        return self._port

    @property
    def base_url(self) -> str:
        """The API root to give a client: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat-completion requests received so far (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The headers of those requests, names lower-cased (a snapshot)."""
        with self._lock:
            return [dict(headers) for headers in self._headers]

    @property
    def request_count(self) -> int:
        """How many chat-completion requests arrived (answered or not)."""
        with self._lock:
            return len(self._requests)

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._port is not None else "not started"
        return f"OpenAITestServer({where}, {self.request_count} requests)"

    # -- internals ---------------------------------------------------------------------------

    def _bind(self, port: int) -> None:
        # Re-binding right after a pause can briefly meet EADDRINUSE while the old socket
        # winds down; SO_REUSEADDR (set by HTTPServer) covers TIME_WAIT, the retry the rest.
        deadline = time.monotonic() + 5.0
        while True:
            try:
                httpd = _HTTPServer(("127.0.0.1", port), _Handler, self)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self._port = httpd.server_address[1]
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"OpenAITestServer:{self._port}",
            daemon=True,
        )
        with self._lock:
            self._httpd, self._thread = httpd, thread
        thread.start()
        self._serving.set()

    def _stop_listening(self) -> None:
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        self._serving.clear()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _resume_quietly(self) -> None:
        with self._lock:
            self._resume_timer = None
        try:
            self.resume()
        except OSError:
            logger.exception("OpenAITestServer: could not re-bind port %s", self._port)

    def _next_item(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[ServerItem | None, int]:
        """Record a request and take the next script item (``None`` when exhausted)."""
        with self._lock:
            self._requests.append(body)
            self._headers.append(headers)
            item = next(self._script, None)
            if item is not None:
                self._served += 1
            return item, self._served

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._closed.wait(seconds)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        owner: OpenAITestServer,
    ) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer is routine here (timeouts are what tests provoke).
        logger.debug("OpenAITestServer: error while answering %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("OpenAITestServer: " + format, *args)

    @property
    def owner(self) -> OpenAITestServer:
        return self.server.owner

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/v1/models":
            model = {
                "id": self.owner.model,
                "object": "model",
                "created": 0,
                "owned_by": "symbiont",
            }
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_error(404, f"no route GET {self.path}", "invalid_request_error")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if urlsplit(self.path).path.rstrip("/") != "/v1/chat/completions":
            self._send_error(404, f"no route POST {self.path}", "invalid_request_error")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send_error(400, "request body is not a JSON object", "invalid_request_error")
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        item, served = self.owner._next_item(body, headers)
        if item is None:
            self._send_error(
                500, f"OpenAITestServer: script exhausted after {served} replies", "server_error"
            )
            return
        if callable(item):
            try:
                reply = item(body)
            except Exception as exc:
                logger.exception("OpenAITestServer: scripted callable raised")
                self._send_error(500, f"scripted callable raised {exc!r}", "server_error")
                return
        else:
            reply = item
        self._answer(reply, body)

    def _answer(self, item: ServerReply, body: dict[str, Any]) -> None:
        if isinstance(item, str):
            item = Text(item)
        if isinstance(item, Hang):
            self.owner._wait(item.seconds)
            self.close_connection = True
            return
        streaming = body.get("stream") is True
        if isinstance(item, Stall):
            self._stall(item, body, streaming)
            return
        self.owner._wait(item.delay)
        if isinstance(item, Drop):
            self.close_connection = True
            return
        if isinstance(item, Malformed):
            self._send(item.status, item.body.encode("utf-8"), item.content_type)
        elif isinstance(item, Status):
            error_type = item.error_type or _default_error_type(item.code)
            message = item.message if item.message is not None else _phrase(item.code)
            self._send_error(item.code, message, error_type, item.error_code, item.headers)
        elif isinstance(item, Text):
            if streaming:
                self._stream(item, body)
            else:
                self._send_json(200, self._completion(item, body))
        else:  # pragma: no cover - guarded by the type
            raise TypeError(f"OpenAITestServer: unknown script item {item!r}")

    def _usage(self, item: Text, body: dict[str, Any]) -> dict[str, int]:
        prompt_tokens = item.prompt_tokens
        if prompt_tokens is None:
            messages = body.get("messages")
            prompt_tokens = sum(
                rough_token_count(m["content"])
                for m in (messages if isinstance(messages, list) else [])
                if isinstance(m, dict) and isinstance(m.get("content"), str)
            )
        completion_tokens = item.completion_tokens
        if completion_tokens is None:
            completion_tokens = rough_token_count(item.content or "")
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def _model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        return model if isinstance(model, str) and model else self.owner.model

    def _tool_calls(self, item: Text) -> list[dict[str, Any]]:
        return [
            {
                "id": call.id or f"call_{next(self.owner._ids)}",
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": call.arguments
                    if isinstance(call.arguments, str)
                    else json.dumps(dict(call.arguments)),
                },
            }
            for call in item.tool_calls
        ]

    @staticmethod
    def _finish_reason(item: Text) -> str | None:
        if item.tool_calls and item.finish_reason == "stop":
            return "tool_calls"
        return item.finish_reason

    def _completion(self, item: Text, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": item.content}
        if item.tool_calls:
            message["tool_calls"] = self._tool_calls(item)
        return {
            "id": f"chatcmpl-test-{next(self.owner._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model(body),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": self._finish_reason(item),
                    "logprobs": None,
                }
            ],
            "usage": self._usage(item, body),
        }

    # -- streaming ---------------------------------------------------------------------------

    def _start_stream(self, content_type: str = "text/event-stream") -> bool:
        # No Content-Length and no chunked encoding: the body ends when the connection closes,
        # which HTTP/1.1 allows and every client handles.
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
        except ConnectionError:
            return False
        return True

    def _event(self, payload: object) -> bool:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        try:
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()
        except ConnectionError:
            logger.debug("OpenAITestServer: client hung up during a stream")
            return False
        return True

    def _chunk(self, body: dict[str, Any], ident: str, delta: dict[str, Any],
               finish_reason: str | None = None) -> dict[str, Any]:  # fmt: skip
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model(body),
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }

    def _stream(self, item: Text, body: dict[str, Any]) -> None:
        if not self._start_stream():
            return
        ident = f"chatcmpl-test-{next(self.owner._ids)}"
        events: list[dict[str, Any]] = [self._chunk(body, ident, {"role": "assistant"})]
        content = item.content or ""
        step = item.chunk_chars or max(16, -(-len(content) // 256))
        step = max(1, step)
        events += [
            self._chunk(body, ident, {"content": content[i : i + step]})
            for i in range(0, len(content), step)
        ]
        for index, call in enumerate(self._tool_calls(item)):
            # The name comes first, the arguments in pieces, as real servers stream them.
            arguments = call["function"]["arguments"]
            head = {"index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}  # fmt: skip
            events.append(self._chunk(body, ident, {"tool_calls": [head]}))
            for i in range(0, len(arguments), step):
                piece = {"index": index, "function": {"arguments": arguments[i : i + step]}}
                events.append(self._chunk(body, ident, {"tool_calls": [piece]}))
        events.append(self._chunk(body, ident, {}, self._finish_reason(item)))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage = self._chunk(body, ident, {})
            usage["choices"] = []
            usage["usage"] = self._usage(item, body)
            events.append(usage)
        for event in events:
            if not self._event(event):
                return
            self.owner._wait(item.chunk_delay)
        self._event("[DONE]")

    def _stall(self, item: Stall, body: dict[str, Any], streaming: bool) -> None:
        if not self._start_stream("text/event-stream" if streaming else "application/json"):
            return
        if streaming:
            ident = f"chatcmpl-test-{next(self.owner._ids)}"
            self._event(self._chunk(body, ident, {"role": "assistant"}))
            if item.content:
                self._event(self._chunk(body, ident, {"content": item.content}))
        self.owner._wait(item.seconds)

    def _send_error(
        self,
        code: int,
        message: str,
        error_type: str,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        error = {"message": message, "type": error_type, "param": None, "code": error_code}
        self._send_json(code, {"error": error}, headers)

    def _send_json(
        self, code: int, payload: object, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(code, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _send(
        self,
        code: int,
        data: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # One request per connection: a paused server must not keep serving pooled
        # keep-alive connections, and per-request threads keep answers concurrent anyway.
        self.close_connection = True
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            logger.debug("OpenAITestServer: client hung up before the answer was sent")


def _phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"


def _default_error_type(code: int) -> str:
    if code == 429:
        return "rate_limit_exceeded"
    if code in (401, 403):
        return "authentication_error" if code == 401 else "permission_error"
    return "server_error" if code >= 500 else "invalid_request_error"
