"""The fractal task: the shader's declaration, the frame renderer, the check a new shader must
pass, and the web app that animates the active shader while evolutions run in the background.

Frames are rendered by `rt.map.shade` over a pixel grid with threads (the GIL released), one
call per frame: a new revision activated by an evolution is picked up by the next call, so the
swap always falls between two frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import symbiont as sb

log = logging.getLogger("symbiont.examples.fractal")

DECLARATION = """
/// The colour of the point (x, y) at time t (seconds): 0x00RRGGBB (the top byte zero).
/// x runs over [-1.6, 1.6] left to right, y over [-1.0, 1.0] top to bottom.
fn shade(x: f64, y: f64, t: f64) -> u32 {
    // A Julia set whose constant circles slowly, coloured by escape time.
    let (cr, ci) = (0.7885 * (0.3 * t).cos(), 0.7885 * (0.3 * t).sin());
    let (mut zr, mut zi) = (x, y);
    let mut n = 0u32;
    while n < 64 && zr * zr + zi * zi < 4.0 {
        let tmp = zr * zr - zi * zi + cr;
        zi = 2.0 * zr * zi + ci;
        zr = tmp;
        n += 1;
    }
    let v = n * 4;
    (v.min(255) << 16) | ((v / 2).min(255) << 8) | (255 - v.min(255))
}
"""

CHECK_SIZE = (64, 40)


def grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) of every pixel's centre, as two (height, width) float64 arrays."""
    xs = np.linspace(-1.6, 1.6, width, dtype=np.float64)
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float64)
    gx, gy = np.meshgrid(xs, ys)
    return np.ascontiguousarray(gx), np.ascontiguousarray(gy)


def python_shade(x: float, y: float, t: float) -> int:
    """The default shader in plain Python (the benchmark's reference for interpreted code)."""
    cr, ci = 0.7885 * math.cos(0.3 * t), 0.7885 * math.sin(0.3 * t)
    zr, zi, n = x, y, 0
    while n < 64 and zr * zr + zi * zi < 4.0:
        zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
        n += 1
    v = min(n * 4, 255)
    return (v << 16) | (min(n * 2, 255) << 8) | (255 - v)


def numpy_frame(gx: np.ndarray, gy: np.ndarray, t: float) -> np.ndarray:
    """The default shader as numpy array expressions (escape time over the whole frame)."""
    cr, ci = 0.7885 * math.cos(0.3 * t), 0.7885 * math.sin(0.3 * t)
    zr, zi = gx.copy(), gy.copy()
    n = np.zeros(gx.shape, dtype=np.uint32)
    for _ in range(64):
        live = zr * zr + zi * zi < 4.0
        if not live.any():
            break
        zr, zi = np.where(live, zr * zr - zi * zi + cr, zr), np.where(live, 2 * zr * zi + ci, zi)
        n += live
    v = np.minimum(n * 4, 255)
    return (v << 16) | (np.minimum(n * 2, 255) << 8) | (255 - v)


def benchmark_cases(*, runs: int, quick: bool) -> list[tuple[str, str, None, float, float, float]]:
    """Rows for benchmarks/examples.py: one frame of the default shader through ``rt.map``
    (one thread, then every core) against plain Python and numpy computing the same pixels."""
    width, height = (160, 100) if quick else (320, 200)
    gx, gy = grid(width, height)
    rt = sb.Runtime(DECLARATION)
    t = 1.0
    native = rt.map.shade(gx, gy, t, threads=1)
    expected = numpy_frame(gx, gy, t)
    assert np.array_equal(native, expected), "the numpy reference disagrees with the shader"
    assert python_shade(float(gx[3, 5]), float(gy[3, 5]), t) == int(native[3, 5])

    def ms(fn: Any, *args: Any, repeats: int = runs) -> float:
        return float(sb.measure(fn, *args, repeats=repeats, warmup=1).median * 1e3)

    def python_frame() -> None:
        for x, y in zip(gx.ravel().tolist(), gy.ravel().tolist(), strict=True):
            python_shade(x, y, t)

    python_ms = ms(python_frame, repeats=max(1, min(runs, 3)))
    numpy_ms = ms(numpy_frame, gx, gy, t)
    size = f"frame {width}x{height}"
    return [
        ("fractal", f"{size}, rt.map 1 thread", None,
         ms(lambda: rt.map.shade(gx, gy, t, threads=1)), python_ms, numpy_ms),
        ("fractal", f"{size}, rt.map every core", None,
         ms(lambda: rt.map.shade(gx, gy, t, threads=0)), python_ms, numpy_ms),
    ]  # fmt: skip


def to_rgba(pixels: np.ndarray) -> bytes:
    """0x00RRGGBB pixels as the RGBA bytes a canvas's ImageData takes."""
    rgba = np.empty((*pixels.shape, 4), dtype=np.uint8)
    rgba[..., 0] = pixels >> 16
    rgba[..., 1] = pixels >> 8
    rgba[..., 2] = pixels
    rgba[..., 3] = 255
    return rgba.tobytes()


def check(fns: sb.Functions, map: Any) -> float:
    """A shader must colour a small frame at two times, without using the top byte and
    without one flat colour (which is what most broken shaders draw)."""
    xs, ys = grid(*CHECK_SIZE)
    frames = [map.shade(xs, ys, t) for t in (0.0, 1.5)]
    for t, frame in zip((0.0, 1.5), frames, strict=True):
        high = np.flatnonzero(frame > 0xFFFFFF)
        if high.size:
            i = high[0]
            raise AssertionError(
                f"shade({xs.flat[i]:.3f}, {ys.flat[i]:.3f}, {t}) returned {frame.flat[i]:#010x}: "
                "the colour must be 0x00RRGGBB, the top byte zero"
            )
    if np.unique(frames[0]).size < 2:
        raise AssertionError(
            f"every pixel of the frame at t=0 is {frames[0].flat[0]:#08x}: draw a picture"
        )
    return float(np.unique(frames[0]).size)


@dataclass
class Animator:
    """The shared state of the page: the active shader, the evolution in the background and
    the last message; rendering runs in worker threads, evolutions on symbiont's loop."""

    rt: sb.Runtime
    agent: sb.Agent
    width: int = 320
    height: int = 200
    threads: int = 0
    frame_timeout: float = 2.0
    evolving: str | None = None
    message: str = "ready"
    frames: int = 0
    started: float = field(default_factory=time.perf_counter)
    shown: list[int] = field(default_factory=list)  # the shaders activated here, in order
    _grid: tuple[np.ndarray, np.ndarray] = field(init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._grid = grid(self.width, self.height)
        self.shown.append(self.rt.active_revision)

    def render(self) -> tuple[np.ndarray, int, float]:
        """One frame of the active shader: (pixels, revision, ms). A shader that panics or
        overruns its deadline is replaced by the one before it, with the message shown."""
        revision = self.rt.active_revision
        start = time.perf_counter()
        try:
            pixels = self.rt.map.shade(
                *self._grid, start - self.started, threads=self.threads,
                timeout=self.frame_timeout,
            )  # fmt: skip
        except (sb.PanicError, sb.TimeoutError) as exc:
            if revision not in self.shown[1:]:
                raise  # the first shader failing has nothing to fall back to
            self.shown.remove(revision)
            self.message = f"revision {revision} failed: {exc}; back to revision {self.shown[-1]}"
            log.warning(self.message)
            self.rt.activate(self.shown[-1])
            return self.render()
        self.frames += 1
        return pixels, revision, (time.perf_counter() - start) * 1000

    def evolve(self, request: str) -> bool:
        """Starts an evolution toward `request` in the background; False if one is running."""
        if self._task is not None and not self._task.done():
            return False
        self.evolving = request
        self.message = f"evolving: {request}"
        self._task = asyncio.get_running_loop().create_task(self._evolve(request))
        return True

    async def wait(self) -> None:
        """Until the evolution in the background (if any) has ended."""
        if self._task is not None:
            await self._task

    async def _evolve(self, request: str) -> None:
        prompt = (
            f"Change the shader as asked: {request}. Keep it animated by t, and fast: it runs "
            f"for every pixel of every frame."
        )
        try:
            info = await self.rt.aevolve(self.agent, prompt, check=check)
        except sb.EvolveError as exc:
            self.message = f"no new shader ({request}): {exc}"
        else:
            # aevolve activated it: the next frame is the new shader's.
            self.shown.append(info.revision)
            self.message = f"revision {info.revision}: {request} ({info.attempts} attempt(s))"
        finally:
            self.evolving = None
        log.info(self.message)

    def status(self, revision: int, ms: float) -> dict[str, Any]:
        return {
            "frame": self.frames, "revision": revision, "ms": round(ms, 2),
            "width": self.width, "height": self.height, "evolving": self.evolving,
            "message": self.message,
        }  # fmt: skip


def create_app(animator: Animator) -> Any:
    """The Starlette app: the page, GET /frame (the next frame) and POST /evolve."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def evolve(request: Request) -> JSONResponse:
        body = await request.json()
        text = str(body.get("request", "")).strip()
        if not text:
            return JSONResponse({"error": "say what to change, e.g. 'make it look like fire'"}, 400)
        if not animator.evolve(text):
            return JSONResponse({"error": f"still evolving: {animator.evolving}"}, 409)
        return JSONResponse({"evolving": text}, 202)

    async def frame(_: Request) -> Response:
        # One frame per request, its status in a header: the page asks for the next frame as
        # soon as it has drawn this one, so a slow client never queues frames up.
        pixels, revision, ms = await asyncio.to_thread(animator.render)
        status = json.dumps(animator.status(revision, ms))  # ASCII: fit for a header
        return Response(to_rgba(pixels), media_type="application/octet-stream",
                        headers={"x-frame": status, "cache-control": "no-store"})  # fmt: skip

    return Starlette(
        routes=[
            Route("/", page),
            Route("/evolve", evolve, methods=["POST"]),
            Route("/frame", frame),
        ]
    )


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>symbiont fractal</title>
<style>
 body { font-family: sans-serif; background: #111; color: #ddd; margin: 2em; }
 canvas { width: 640px; image-rendering: pixelated; border: 1px solid #444; }
 input { width: 28em; } #message { color: #fc6; min-height: 1.2em; }
</style></head>
<body>
<h1>symbiont fractal</h1>
<canvas id="view"></canvas>
<p><span id="ms">-</span> ms per frame, frame <span id="frame">0</span>,
   revision <span id="revision">-</span></p>
<form id="ask"><input id="request" placeholder="make it look like fire">
 <button>evolve</button></form>
<p id="message"></p>
<script>
const canvas = document.getElementById("view"), ctx = canvas.getContext("2d");
const $ = (id) => document.getElementById(id);
async function animate() {
  for (;;) {
    try {
      const answer = await fetch("/frame", {cache: "no-store"});
      const header = JSON.parse(answer.headers.get("x-frame"));
      const pixels = new Uint8ClampedArray(await answer.arrayBuffer());
      canvas.width = header.width; canvas.height = header.height;
      ctx.putImageData(new ImageData(pixels, header.width), 0, 0);
      $("ms").textContent = header.ms.toFixed(1);
      $("frame").textContent = header.frame;
      $("revision").textContent = header.revision;
      $("message").textContent = header.message;
    } catch (err) {
      $("message").textContent = `no frame: ${err}`;
      await new Promise((done) => setTimeout(done, 1000));
    }
    await new Promise((done) => requestAnimationFrame(done));
  }
}
animate();
$("ask").onsubmit = async (ev) => {
  ev.preventDefault();
  const answer = await fetch("/evolve", {method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({request: $("request").value})});
  if (!answer.ok) { $("message").textContent = (await answer.json()).error; }
};
</script>
</body></html>
"""
