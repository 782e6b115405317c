"""`symbiont serve`: a live local web page of the runs in a store.

An ASGI app (Starlette on uvicorn, the ``serve`` extra) over the store opened read-only: a
JSON API built on the CLI's own queries, and one static page shipped in the package (plain
JavaScript, no CDN, no build step). Starlette and uvicorn are imported only here, never by
``import symbiont``.
"""

from symbiont._serve._app import DEFAULT_HOST, DEFAULT_PORT, create_app, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "serve"]
