"""OpenAITestServer over raw HTTP (http.client), independent of any OpenAI client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

import pytest

from symbiont.testing import Drop, Hang, Malformed, OpenAITestServer, Stall, Status, Text, ToolCall


def post(
    server: OpenAITestServer, body: object, path: str = "/v1/chat/completions"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def chat(content: str = "hello world") -> dict[str, Any]:
    return {"model": "client-model", "messages": [{"role": "user", "content": content}]}


def test_completion_has_openai_shape() -> None:
    with OpenAITestServer(["fn a() {}"]) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        status, headers, raw = post(server, chat("three words here"))
        assert server.requests == [chat("three words here")]
        assert server.request_count == 1
    assert status == 200
    assert headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "client-model"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "fn a() {}"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


def test_text_options() -> None:
    item = Text("partial", finish_reason="length", prompt_tokens=50, completion_tokens=7)
    with OpenAITestServer([item]) as server:
        body = json.loads(post(server, chat())[2])
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}


def test_models_endpoint() -> None:
    with OpenAITestServer(model="served-model") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/v1/models")
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    assert response.status == 200
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["served-model"]


def test_status_has_openai_error_body_and_headers() -> None:
    item = Status(429, message="slow down", error_code="rate_limit", headers={"Retry-After": "2"})
    with OpenAITestServer([item, Status(503)]) as server:
        status, headers, raw = post(server, chat())
        second_status, _, second_raw = post(server, chat())
    assert status == 429
    assert headers["retry-after"] == "2"
    error = json.loads(raw)["error"]
    assert error["message"] == "slow down"
    assert error["code"] == "rate_limit"
    assert error["type"]
    assert second_status == 503
    assert json.loads(second_raw)["error"]["message"] == "Service Unavailable"


def test_malformed_body_is_sent_verbatim() -> None:
    with OpenAITestServer([Malformed("{oops", status=502, content_type="text/plain")]) as server:
        status, headers, raw = post(server, chat())
    assert (status, headers["content-type"], raw) == (502, "text/plain", b"{oops")


def test_drop_closes_without_an_answer() -> None:
    with OpenAITestServer([Drop()]) as server:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            post(server, chat())
        assert server.request_count == 1


def test_hang_sends_nothing_until_closed() -> None:
    with OpenAITestServer([Hang(30.0)]) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=0.3)
        connection.request("POST", "/v1/chat/completions", body=json.dumps(chat()))
        with pytest.raises(TimeoutError):
            connection.getresponse()
        connection.close()


def test_callable_items_compute_the_answer() -> None:
    def by_request(body: dict[str, Any]) -> str | Status:
        content = body["messages"][-1]["content"]
        return Status(400, message="refused") if content == "bad" else content[::-1]

    def broken(body: dict[str, Any]) -> str:
        raise RuntimeError("scripted bug")

    with OpenAITestServer([by_request, by_request, broken]) as server:
        ok = json.loads(post(server, chat("abc"))[2])
        refused = post(server, chat("bad"))
        crashed = post(server, chat())
    assert ok["choices"][0]["message"]["content"] == "cba"
    assert refused[0] == 400
    assert crashed[0] == 500
    assert "scripted bug" in json.loads(crashed[2])["error"]["message"]


def test_exhausted_script_answers_500_and_says_so() -> None:
    with OpenAITestServer(["only"]) as server:
        post(server, chat())
        status, _, raw = post(server, chat())
        assert server.request_count == 2
    assert status == 500
    assert "script exhausted after 1 replies" in json.loads(raw)["error"]["message"]


def test_bad_requests() -> None:
    with OpenAITestServer(["unused"]) as server:
        assert post(server, chat(), path="/v1/completions")[0] == 404
        assert post(server, ["not", "an", "object"])[0] == 400
        assert server.request_count == 0


def test_pause_refuses_connections_on_the_same_port() -> None:
    with OpenAITestServer(["one", "two"]) as server:
        port = server.port
        server.pause()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        server.resume()
        assert post(server, chat())[0] == 200

        server.pause(0.2)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert server.wait_until_serving(5.0)
        assert server.port == port
        assert post(server, chat())[0] == 200


def test_delayed_answers_overlap() -> None:
    lock = threading.Lock()
    state = {"in_flight": 0, "peak": 0}

    def slow(body: dict[str, object]) -> str:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        time.sleep(0.3)
        with lock:
            state["in_flight"] -= 1
        return "x"

    results: list[int] = []
    with OpenAITestServer([slow] * 4) as server:

        def one() -> None:
            results.append(post(server, chat())[0])

        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [200] * 4
    assert state["peak"] == 4, "each request is served on its own thread"


def test_start_and_close_without_context_manager() -> None:
    server = OpenAITestServer(["hi"])
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    try:
        assert post(server, chat())[0] == 200
    finally:
        server.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def events(raw: bytes) -> list[str]:
    text = raw.decode()
    assert text.endswith("\n\n")
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


def test_stream_requests_get_server_sent_events() -> None:
    item = Text("fn a() {}", chunk_chars=4, prompt_tokens=3, completion_tokens=2)
    body = {**chat(), "stream": True, "stream_options": {"include_usage": True}}
    with OpenAITestServer([item]) as server:
        status, headers, raw = post(server, body)
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    data = events(raw)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert pieces[1:4] == ["fn a", "() {", "}"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_streamed_tool_calls_come_in_pieces() -> None:
    item = Text(None, tool_calls=(ToolCall("probe", {"n": 12345}, id="c1"),), chunk_chars=5)
    with OpenAITestServer([item]) as server:
        _, _, raw = post(server, {**chat(), "stream": True})
    chunks = [json.loads(d) for d in events(raw)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0] == {"index": 0, "id": "c1", "type": "function",
                        "function": {"name": "probe", "arguments": ""}}  # fmt: skip
    assert "".join(c["function"]["arguments"] for c in calls) == '{"n": 12345}'
    assert len(calls) > 2
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # Without a stream the same item is one message with its tool calls.
    with OpenAITestServer([item]) as server:
        _, _, raw = post(server, chat())
    message = json.loads(raw)["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "probe", "arguments": '{"n": 12345}'}


def test_stall_sends_headers_and_a_first_chunk_then_nothing() -> None:
    with OpenAITestServer([Stall(60.0, content="fn a(")]) as server:
        # The read timeout only has to outlast the first chunks, sent at once; the stall is 60 s.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
        body = json.dumps({**chat(), "stream": True})
        connection.request("POST", "/v1/chat/completions", body=body,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("content-type") == "text/event-stream"
        first = response.fp.readline() + response.fp.readline()
        second = response.fp.readline() + response.fp.readline()
        delta = json.loads(first.decode().removeprefix("data: "))["choices"][0]["delta"]
        assert delta == {"role": "assistant"}
        assert '"content": "fn a("' in second.decode()
        with pytest.raises(TimeoutError):
            response.fp.readline()
        connection.close()
