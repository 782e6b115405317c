"""Animate an evolving Rust shader in the browser; ask for a change and watch it swap in.

`shade(x: f64, y: f64, t: f64) -> u32` colours one pixel (0x00RRGGBB). A local web page
animates the active shader: every frame is one `rt.map.shade` call over the pixel grid with
threads, streamed to a canvas (the page fetches the next frame as it draws one), with the
milliseconds per frame. A request typed in the page ("make it look like fire", "add a slow
zoom") starts an evolution in the background while the animation keeps running; the new shader
swaps in between two frames. A candidate that panics is fed back to the model and never shown;
an active shader that panics later is replaced by the previous one, with its message on the
page.

    pip install 'symbiont[serve]'                  # Starlette and uvicorn
    python examples/fractal/main.py [--port 8765]  # or: symbiont example fractal
    python examples/fractal/main.py --request "make it look like fire" --snapshot fire.png
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import symbiont as sb


def _load_task() -> Any:
    """examples/fractal/task.py, under a name of its own (every example has a task.py)."""
    name = "symbiont_example_fractal_task"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("task.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while building the class
        spec.loader.exec_module(module)
    return sys.modules[name]


task = _load_task()
DECLARATION = task.DECLARATION  # every example's main.py names what it evolves
# The page's requests are typed by the user; this one stands for them (tests, model checks).
PROMPT = "Make it look like fire."


def snapshot(animator: Any, path: str) -> None:
    """Writes the current frame as a PNG (needs matplotlib, the `plot` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pixels, revision, ms = animator.render()
    image = np.frombuffer(task.to_rgba(pixels), dtype=np.uint8).reshape(*pixels.shape, 4)
    plt.imsave(path, image)
    print(f"revision {revision}: {ms:.1f} ms per frame, snapshot {path}")


async def evolve_once(animator: Any, request: str, before: str | None, after: str | None) -> int:
    """The page's evolution without the page: one request, a snapshot before and after."""
    if before:
        snapshot(animator, before)
    animator.evolve(request)
    await animator.wait()
    print(animator.message)
    print(animator.rt.code())
    if after:
        snapshot(animator, after)
    return 0 if len(animator.shown) > 1 else 1


def main(
    agent: sb.Agent | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    width: int = 320,
    height: int = 200,
    threads: int = 0,
    attempts: int = 5,
    request: str | None = None,
    snapshot_path: str | None = None,
) -> int:
    rt = sb.Runtime(task.DECLARATION, max_attempts=attempts, check_timeout=2.0)
    animator = task.Animator(
        rt, agent or sb.agent_from_env(), width=width, height=height, threads=threads
    )
    if request is not None:
        before = None
        if snapshot_path:
            before = str(Path(snapshot_path).with_name(f"{Path(snapshot_path).stem}-before.png"))
        return asyncio.run(evolve_once(animator, request, before, snapshot_path))
    try:
        import uvicorn
    except ImportError:
        print("the fractal page needs Starlette and uvicorn: pip install 'symbiont[serve]'")
        return 0
    print(f"open http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(task.create_app(animator), host=host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--size", default="320x200", help="frame size WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, default=0, help="render threads (0: all cores)")
    parser.add_argument("--attempts", type=int, default=5, help="LLM replies per request")
    parser.add_argument("--request", help="evolve once toward this request, without the page")
    parser.add_argument("--snapshot", help="with --request: the PNG of the new shader")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    sys.exit(
        main(
            host=args.host,
            port=args.port,
            width=w,
            height=h,
            threads=args.threads,
            attempts=args.attempts,
            request=args.request,
            snapshot_path=args.snapshot,
        )
    )
