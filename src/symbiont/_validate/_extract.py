"""Code extraction: from an LLM reply (prose, reasoning, fenced blocks) to one Rust source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from symbiont._decl import _syntax as syn
from symbiont._validate._signature import function_name

if TYPE_CHECKING:
    from symbiont._decl import Declarations

_TAGS = "think|thinking|reasoning"
_REASONING = re.compile(rf"<({_TAGS})\s*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_OPEN_TAG_AT_START = re.compile(rf"\s*<(?:{_TAGS})\s*>", re.IGNORECASE)
_STRAY_CLOSE = re.compile(rf"</(?:{_TAGS})\s*>", re.IGNORECASE)
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$", re.MULTILINE)
_TAG_WORD = re.compile(r"[{.\s]*([\w+#-]*)")
# A line that starts a function item: how a raw (unfenced) reply is told apart from prose.
_FN_LINE = re.compile(
    r'^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern(?:\s+"[^"]*")?)\s+)*'
    r"fn\s+[A-Za-z_]\w*",
    re.MULTILINE,
)
_FN_NAME = re.compile(r"\bfn\s+([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class _Block:
    tag: str  # first word of the info string, lower-cased; "" when untagged
    body: str


def _strip_reasoning(reply: str) -> str:
    text = _REASONING.sub("", reply)
    # A closing tag with no opening one: the chat template put `<think>` in the prompt.
    closers = list(_STRAY_CLOSE.finditer(text))
    if closers:
        text = text[closers[-1].end() :]
    if _OPEN_TAG_AT_START.match(text):
        fence = _FENCE.search(text)
        text = text[fence.start() :] if fence else ""
    return text


def _fenced_blocks(text: str) -> list[_Block] | None:
    """Fenced blocks in order (CommonMark-style fences at line start); None when there are none."""
    lines = text.split("\n")
    blocks: list[_Block] = []
    found = False
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m.group(2)[0] == "`" and "`" in m.group(3)):
            i += 1
            continue
        found = True
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3)
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
        # Content lines lose up to the fence's own indentation, as in CommonMark.
        body = [
            line[min(indent, len(line) - len(line.lstrip(" "))) :] for line in lines[i + 1 : end]
        ]
        tag_match = _TAG_WORD.match(info)
        tag = tag_match.group(1).lower() if tag_match else ""
        blocks.append(_Block(tag=tag, body="\n".join(body) + "\n"))
        i = end + 1
    return blocks if found else None


def _rank(body: str, wanted: frozenset[str]) -> int:
    """Lower is better: clean and declared, broken and declared, clean, broken, anything."""
    tree = syn.parse(body)
    if not tree.root_node.has_error:
        names = {
            function_name(n) for n in tree.root_node.named_children if n.type == "function_item"
        }
        if names:
            return 0 if names & wanted else 2
    names = set(_FN_NAME.findall(body))
    if names:
        return 1 if names & wanted else 3
    return 4


def extract_code(reply: str, decls: Declarations | None = None) -> str | None:
    """The Rust code in an LLM reply, or None when there is none.

    Reasoning sections (``<think>``...) are dropped. Fenced blocks tagged ``rust``/``rs`` win
    over untagged ones; other languages are ignored. Within the winning group, blocks are tried
    from last to first: one that parses and defines a declared function is preferred, then one
    that defines a declared function but does not parse (so its errors get reported), then any
    block defining a function. A reply without fences is taken whole when it has a ``fn`` item.
    """
    text = _strip_reasoning(reply.replace("\r\n", "\n"))
    blocks = _fenced_blocks(text)
    if blocks is None:
        return text.strip() + "\n" if _FN_LINE.search(text) else None
    rust = [b.body for b in blocks if b.tag in ("rust", "rs") and b.body.strip()]
    group = rust or [b.body for b in blocks if not b.tag and b.body.strip()]
    if not group:
        return None
    wanted = frozenset(decls.names) if decls is not None else frozenset()
    best, best_rank = group[-1], 5
    for body in reversed(group):
        rank = _rank(body, wanted)
        if rank < best_rank:
            best, best_rank = body, rank
        if rank == 0:
            break
    return best
