"""The fractal example: the shader check on hand-written Rust, a scripted evolution through bad
candidates, the renderer's fallback when the active shader panics, and the page itself in
headless Chromium while a scripted agent takes 2 s to answer."""

from __future__ import annotations

import asyncio
import runpy
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symbiont as sb
from symbiont._cli import examples_dir
from symbiont.testing import ScriptedAgent

EXAMPLE = runpy.run_path(str(examples_dir() / "fractal" / "main.py"))
task: Any = EXAMPLE["task"]

CHROMIUM = "/usr/bin/chromium"
SIGNATURE = "fn shade(x: f64, y: f64, t: f64) -> u32"
# Red rising with height, green with x: independent of t, so a frame can be predicted.
FIRE = f"""{SIGNATURE} {{
    let r = (255.0 * (1.0 - y) / 2.0) as u32;
    let g = (255.0 * (x + 1.6) / 3.2) as u32;
    (r << 16) | (g << 8)
}}"""
PANICS = f"""{SIGNATURE} {{
    if x > 0.5 {{ panic!("too hot at x = {{x}}"); }}
    0x00_20_40_60 + (y * 10.0) as u32
}}"""


def fenced(code: str) -> str:
    return f"```rust\n{code}\n```"


def fire_pixels(width: int, height: int) -> np.ndarray:
    xs, ys = task.grid(width, height)
    return ((255.0 * (1.0 - ys) / 2.0).astype(np.uint32) << 16) | (
        (255.0 * (xs + 1.6) / 3.2).astype(np.uint32) << 8
    )


def test_check_on_hand_written_shaders() -> None:
    rt = sb.Runtime(task.DECLARATION)
    assert task.check(rt.fns, rt.map) >= 8  # the default Julia set has many colours
    cases = {
        f"{SIGNATURE} {{ 0xFF00_0000 | (x * 100.0) as u32 }}": "the top byte zero",
        f"{SIGNATURE} {{ 0x123456 }}": "every pixel of the frame at t=0 is 0x123456",
        PANICS: "too hot at x = ",
    }
    for code, message in cases.items():
        n = rt.register(code)
        with pytest.raises((AssertionError, sb.PanicError), match=message):
            task.check(rt.revision(n).fns, rt.revision(n).map)
    n = rt.register(FIRE)
    assert task.check(rt.revision(n).fns, rt.revision(n).map) > 10


def test_scripted_request_rejects_bad_shaders_then_swaps_in(tmp_path: Path) -> None:
    scripts = [
        f"{SIGNATURE} {{ 0xFF00_0000 }}",
        PANICS,
        f"{SIGNATURE} {{ let mut n = 0u32; loop {{ n = n.wrapping_add(1); }} }}",
        f"{SIGNATURE} {{ std::process::abort() }}",
        FIRE,
    ]
    agent = ScriptedAgent([fenced(s) for s in scripts])
    after = tmp_path / "fire.png"
    assert EXAMPLE["main"](
        agent, width=64, height=40, request="make it look like fire", snapshot_path=str(after),
    ) == 0  # fmt: skip
    feedback = [r.messages[-1].content for r in agent.requests[1:]]
    assert "the colour must be 0x00RRGGBB" in feedback[0]
    assert "panicked at line 2" in feedback[1] and "too hot at x = " in feedback[1]
    assert "did not finish within its deadline of 2 s" in feedback[2]
    assert "std::process" in feedback[3]
    assert "make it look like fire" in agent.requests[0].messages[-1].content
    assert after.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "fire-before.png").is_file()


def test_an_active_shader_that_panics_gives_way_to_the_previous_one() -> None:
    rt = sb.Runtime(task.DECLARATION)
    animator = task.Animator(rt, ScriptedAgent([]), width=32, height=20)
    fire = rt.register(FIRE)
    late = rt.register(f'{SIGNATURE} {{ if t > 0.0 {{ panic!("burnt out") }} 0x10 }}')
    animator.shown += [fire, late]  # as if two requests had swapped them in
    rt.activate(late)
    pixels, revision, _ = animator.render()
    assert revision == fire and rt.active_revision == fire
    assert np.array_equal(pixels, fire_pixels(32, 20))
    assert "revision 2 failed" in animator.message and "burnt out" in animator.message
    assert "back to revision 1" in animator.message


# --------------------------------------------------------------------------- the page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def page_server() -> Iterator[tuple[str, list[Any]]]:
    """The app in uvicorn on a thread; the script answers each request after 2 s."""
    uvicorn = pytest.importorskip("uvicorn")
    script: list[Any] = []

    async def slow(_: Any) -> str:
        await asyncio.sleep(2.0)
        return str(script.pop(0))

    rt = sb.Runtime(task.DECLARATION, max_attempts=1)
    agent = ScriptedAgent(iter(lambda: slow, None))
    animator = task.Animator(rt, agent, width=96, height=60, threads=2)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(task.create_app(animator), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/", script
    server.should_exit = True
    thread.join(10)


def canvas_pixel(page: Any, x: int, y: int) -> int:
    r, g, b = page.evaluate(
        f"Array.from(document.getElementById('view').getContext('2d')"
        f".getImageData({x}, {y}, 1, 1).data.slice(0, 3))"
    )
    return int(r) << 16 | int(g) << 8 | int(b)


def frame(page: Any) -> int:
    return int(page.inner_text("#frame"))


@pytest.mark.browser
def test_page_keeps_animating_while_evolving_and_swaps_between_frames(
    page_server: tuple[str, list[Any]],
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    url, script = page_server
    script += [fenced(FIRE), fenced(PANICS)]
    fire = fire_pixels(96, 60)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("Number(document.getElementById('frame').textContent) > 3")
        assert page.inner_text("#revision") == "0"
        before = canvas_pixel(page, 90, 5)
        assert before != fire[5, 90]

        page.fill("#request", "make it look like fire")
        page.click("button")
        page.wait_for_function("document.getElementById('message').textContent"
                               ".startsWith('evolving')")  # fmt: skip
        during = frame(page)
        # The agent answers after 2 s: frames go on arriving meanwhile, from revision 0.
        page.wait_for_function(
            f"Number(document.getElementById('frame').textContent) > {during + 5}"
        )
        assert page.inner_text("#revision") == "0"
        assert "evolving: make it look like fire" in page.inner_text("#message")

        page.wait_for_function("document.getElementById('revision').textContent === '1'",
                               timeout=20_000)  # fmt: skip
        swapped = frame(page)
        page.wait_for_function(f"Number(document.getElementById('frame').textContent) > {swapped}")
        assert canvas_pixel(page, 90, 5) == fire[5, 90] != before
        assert canvas_pixel(page, 3, 55) == fire[55, 3]
        assert "revision 1: make it look like fire" in page.inner_text("#message")

        page.fill("#request", "make it hotter")
        page.click("button")
        page.wait_for_function("document.getElementById('message').textContent"
                               ".startsWith('no new shader')", timeout=20_000)  # fmt: skip
        message = page.inner_text("#message")
        assert "too hot at x = " in message
        shown = frame(page)
        page.wait_for_function(f"Number(document.getElementById('frame').textContent) > {shown}")
        assert page.inner_text("#revision") == "1"
        assert canvas_pixel(page, 90, 5) == fire[5, 90]
        browser.close()
