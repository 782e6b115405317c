"""Policy scan: crate-level attributes, forbidden constructs and denied paths and macros.

Paths are resolved through the candidate's (and the prelude's) ``use`` declarations, aliases
and glob imports, with one simplification: every ``use`` is treated as visible everywhere.
Token trees of macro calls are scanned like code, so ``println!("{}", std::process::id())``
is seen. Macros are also known by what a `use` alias of them resolves to, so a renamed
`global_asm!` or `include_str!` is refused like the original.

Refused outright, whatever the policy says: machine code (`global_asm!`, `naked_asm!`, naked
functions) and link sections (`#[link_section]`, `#[used]`), which run code when the library
is loaded; files of the build machine (`mod x;`, `#[path]`, the `include!` family); symbols and
runtime hooks of the host. This is guidance for honest models and the first line against hostile
ones; the build limits and process isolation are the next.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from symbiont import _prompts as words
from symbiont._decl import _syntax as syn
from symbiont._validate._types import DEFAULT_DENIED_MACROS

if TYPE_CHECKING:
    import tree_sitter as ts

    from symbiont._decl import Declarations
    from symbiont._validate._types import Policy

RustPath = tuple[str, ...]  # segments: ("std", "process", "exit")

# Lint attributes are harmless but illegal where the candidate is `include!`d; they are dropped.
_LINT_ATTRIBUTES = frozenset({"allow", "warn", "deny", "forbid", "expect"})
_EXPORT_WHY = words.EXPORT_WHY
_HOOK_WHY = words.HOOK_WHY
_SECTION_WHY = words.SECTION_WHY
_FILE_WHY = words.FILE_WHY
# Attributes refused wherever they appear (also inside `cfg_attr(...)` and `unsafe(...)`), each
# with its reason.
_ATTRIBUTES = {
    "no_mangle": _EXPORT_WHY,
    "export_name": _EXPORT_WHY,
    "link": _EXPORT_WHY,
    "link_name": _EXPORT_WHY,
    "linkage": _EXPORT_WHY,
    "link_section": _SECTION_WHY,
    "used": _SECTION_WHY,
    "global_allocator": _HOOK_WHY,
    "panic_handler": _HOOK_WHY,
    "alloc_error_handler": _HOOK_WHY,
    "start": _HOOK_WHY,
    "naked": words.NAKED_WHY,
    "path": _FILE_WHY,
    # The entry point is called from the glue's `unsafe` code, so no check that the CPU has the
    # feature stands between `#[target_feature(enable = "tbm")]` and a SIGILL of the host.
    "target_feature": words.TARGET_FEATURE_WHY,
    "debugger_visualizer": words.VISUALIZER_WHY,
}
# Macros that put raw machine code into the library, refused under any name or path they are
# reached by (`std::arch::`, `core::arch::`, a `use` alias or glob): code placed in
# `.init_array` by `global_asm!` runs when the library is loaded, before any guard or check.
_ASM_MACROS = frozenset({"global_asm", "naked_asm", "asm"})
_ASM_WHY = words.ASM_WHY
# Denied whatever the policy says: symbiont's panic capture relies on the host's hooks.
_HOOKS = (
    "std::panic::set_hook",
    "std::panic::take_hook",
    "std::panic::update_hook",
    "std::panic::always_abort",
    "std::alloc::set_alloc_error_hook",
)
# Also denied whatever the policy says: deadlines stop a call by unwinding through its code.
_CATCHERS = ("std::panic::catch_unwind",)
_CRATES = frozenset({"std", "core", "alloc"})
# symbiont's own glue in the generated crate: hidden from candidate code by the crate layout,
# and refused here as well, with a reason the model can act on.
_GLUE_PREFIXES = ("__symbiont", "__sb_", "symbiont_rt")
_GLUE_WHY = words.GLUE_WHY
_SEGMENTS = frozenset({"identifier", "type_identifier", "self", "crate", "super"})
_COMMENTS = frozenset({"line_comment", "block_comment"})
_LITERALS = frozenset({"string_literal", "raw_string_literal", "char_literal"})
_NAMED_ITEMS = frozenset(
    {
        "function_item",
        "mod_item",
        "struct_item",
        "enum_item",
        "union_item",
        "trait_item",
        "type_item",
        "const_item",
        "static_item",
    }
)
_UNSAFE_FORMS = {  # parent node type -> (construct, how the message names it)
    "unsafe_block": ("unsafe block", "an unsafe block (`unsafe { ... }`)"),
    "function_modifiers": ("unsafe fn", "an `unsafe fn`"),
    "impl_item": ("unsafe impl", "an `unsafe impl`"),
    "trait_item": ("unsafe trait", "an `unsafe trait`"),
    "foreign_mod_item": ("unsafe extern", "an `unsafe extern` block"),
    "attribute": ("#[unsafe(...)]", "the `#[unsafe(...)]` attribute form"),
    "token_tree": ("unsafe", "`unsafe` inside a macro call"),
}
_UNSAFE_WHY = words.UNSAFE_WHY
# Lifetimes that a signature or type ties together implicitly (`&'a &'b T` implies `'b: 'a`) are
# what the best-known soundness bug of the compiler needs (rust-lang/rust#25860 and its
# relatives #84591, #100051): a generic function coerced to a function pointer loses those
# implied bounds, and safe code then returns a reference to freed memory. Honest numeric code
# needs one lifetime at a time; the shapes below are refused so that the known exploits are.
_FREE_LIFETIMES_EXCLUDED = frozenset({"'static", "'_"})
_LIFETIMES_WHY = words.LIFETIMES_WHY
_STATE_WHY = words.STATE_WHY


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One forbidden construct: where (1-based line and UTF-8 byte column, as tree-sitter
    counts; the column orders findings on one line), what (``construct``), and the feedback
    line for it."""

    line: int
    column: int
    construct: str
    message: str


def _finding(at: ts.Node | tuple[int, int], construct: str, what: str, why: str) -> Finding:
    """``at`` is a node or a 0-based (row, column) point."""
    row, column = at if isinstance(at, tuple) else at.start_point
    message = words.refusal(row + 1, what, why)
    return Finding(line=row + 1, column=column + 1, construct=construct, message=message)


def render(findings: list[Finding], limit: int = 5) -> str:
    """The report of ``findings`` (in source order, first ``limit`` of them), one per line."""
    shown = "\n".join(f"- {f.message}" for f in findings[:limit])
    more = f"\n(and {len(findings) - limit} more)" if len(findings) > limit else ""
    return f"{shown}{more}"


def crate_attributes(root: ts.Node, code: str) -> tuple[str, list[Finding]]:
    """``code`` without crate-level lint attributes and inner doc comments, and the other
    crate-level attributes (which cannot be honoured where the candidate is included).

    Removed text becomes spaces, so every later line and column keeps its position.
    """
    raw = bytearray(code.encode("utf-8"))
    rows: set[int] = set()
    findings: list[Finding] = []
    for node in root.children:
        if node.type == "inner_attribute_item":
            attribute = node.named_children[0]
            name = syn.text(attribute.named_children[0]) if attribute.named_children else "?"
            if name not in _LINT_ATTRIBUTES:
                findings.append(
                    _finding(
                        node,
                        f"#![{name}]",
                        f"the crate attribute `#![{name}]`",
                        words.CRATE_ATTRIBUTE_WHY,
                    )
                )
                continue
        elif not (
            node.type in _COMMENTS
            and any(c.type == "inner_doc_comment_marker" for c in node.children)
        ):
            continue
        for i in range(node.start_byte, node.end_byte):
            if raw[i] != ord("\n"):
                raw[i] = ord(" ")
        (first, _), (last, last_col) = node.start_point, node.end_point
        rows.update(range(first, last + (1 if last_col else 0)))
    if not rows:
        return code, findings
    lines = raw.decode("utf-8").split("\n")
    for row in rows:
        lines[row] = lines[row].rstrip()
    return "\n".join(lines), findings


@dataclass(frozen=True, slots=True)
class _Use:
    """One name a `use` declaration brings in: its path as written, and the binding."""

    path: RustPath  # starts with "" for a leading `::`
    binding: str | None  # None for a glob or `as _`
    glob: bool
    point: tuple[int, int]  # 0-based (row, column) where the entry is written


def _ident(word: str) -> str:
    """A raw identifier names what its plain spelling names: `std::r#process` is `std::process`."""
    return word[2:] if word.startswith("r#") else word


def _segments(node: ts.Node) -> RustPath:
    return tuple(_ident(s) for s in "".join(syn.text(t) for t in syn.tokens(node)).split("::"))


def _use_entries(node: ts.Node, prefix: RustPath = ()) -> Iterator[_Use]:
    point = node.start_point
    kind = node.type
    if kind == "use_declaration":
        argument = node.child_by_field_name("argument")
        if argument is not None:
            yield from _use_entries(argument, prefix)
    elif kind == "use_list":
        for child in node.named_children:
            yield from _use_entries(child, prefix)
    elif kind == "scoped_use_list":
        path = node.child_by_field_name("path")
        inner = node.child_by_field_name("list")
        if inner is not None:
            yield from _use_entries(inner, prefix + (_segments(path) if path else ()))
    elif kind == "use_wildcard":
        path = next((c for c in node.named_children if c.type not in _COMMENTS), None)
        yield _Use(prefix + (_segments(path) if path else ()), None, True, point)
    elif kind == "use_as_clause":
        path, alias = node.child_by_field_name("path"), node.child_by_field_name("alias")
        full = _self_path(prefix + _segments(path)) if path else prefix
        binding = _ident(syn.text(alias)) if alias is not None else None
        yield _Use(full, binding if binding != "_" else None, False, point)
    elif kind not in _COMMENTS:
        full = _self_path(prefix + _segments(node))
        yield _Use(full, full[-1] if full else None, False, point)


def _self_path(path: RustPath) -> RustPath:
    """`use std::process::{self}` names `std::process`."""
    return path[:-1] if len(path) > 1 and path[-1] == "self" else path


@functools.lru_cache(maxsize=64)
def _prelude_uses(prelude: str) -> tuple[_Use, ...]:
    """The prelude's `use` lines: glob-imported into the candidate's scope by the crate."""
    if "use" not in prelude:
        return ()
    root = syn.parse(prelude).root_node
    return tuple(
        u for n in root.named_children if n.type == "use_declaration" for u in _use_entries(n)
    )


def _std(path: RustPath) -> RustPath:
    return ("std", *path[1:]) if path and path[0] in ("core", "alloc") else path


def _matches(path: str, rule: str) -> bool:
    return path == rule or path.startswith(rule + "::")


class _Scan:
    """One pass over a candidate: collects tokens, `use` entries and item-level findings, then
    resolves paths."""

    def __init__(self, decls: Declarations, policy: Policy) -> None:
        def norm(rule: str) -> str:
            return "::".join(_std(tuple(rule.removeprefix("::").split("::"))))

        # Denied first, so that on equal length the allowed rule (later) wins the max().
        self.rules = [(norm(r), False) for r in policy.denied_paths] + [
            (norm(r), True) for r in policy.allowed_paths
        ]
        self.denied_macros = frozenset(policy.denied_macros)
        self.locals: set[str] = set(decls.prelude_names)
        self.prelude = _prelude_uses(decls.prelude)
        self.aliases: dict[str, set[RustPath]] = {}
        self.globs: set[RustPath] = set()
        self.findings: list[Finding] = []

    def run(self, root: ts.Node) -> list[Finding]:
        tokens: list[ts.Node] = []
        uses: list[_Use] = []
        stack = [root]
        while stack:
            node = stack.pop()
            kind = node.type
            if kind in _COMMENTS:
                continue
            if kind == "use_declaration":
                uses.extend(_use_entries(node))
                continue
            if kind in _NAMED_ITEMS and (name := node.child_by_field_name("name")) is not None:
                self.locals.add(_ident(syn.text(name)))
            self._item(node)
            if node.child_count == 0 or kind in _LITERALS:
                tokens.append(node)
            else:
                stack.extend(reversed(node.children))
        self._bind((*self.prelude, *uses))
        for use in uses:
            self._check_use(use)
        self._tokens(tokens)
        # The same construct twice on a line (a `use` and its path token) is reported once.
        unique: dict[tuple[int, str], Finding] = {}
        for f in sorted(self.findings, key=lambda f: (f.line, f.column)):
            unique.setdefault((f.line, f.construct), f)
        return list(unique.values())

    def _item(self, node: ts.Node) -> None:
        kind = node.type
        if kind == "foreign_mod_item":
            why = words.EXTERN_BLOCK_WHY
            # Placed at `extern`, so that `unsafe extern` reports its `unsafe` first.
            at = next((c for c in node.children if c.type == "extern_modifier"), node)
            what = 'an extern block (`extern "C" { ... }`)'
            self.findings.append(_finding(at, "extern block", what, why))
        elif kind == "extern_crate_declaration":
            why = words.EXTERN_CRATE_WHY
            self.findings.append(_finding(node, "extern crate", "`extern crate`", why))
        elif kind == "static_item":
            mut = any(c.type == "mutable_specifier" for c in node.children)
            construct = "static mut" if mut else "static"
            self.findings.append(_finding(node, construct, f"a `{construct}` item", _STATE_WHY))
        elif kind == "macro_definition":
            self._macro_rules(node)
        elif kind in ("reference_type", "generic_type", "lifetime_parameter", "where_predicate"):
            self._tied_lifetimes(node)
        elif kind == "mod_item" and node.child_by_field_name("body") is None:
            name = node.child_by_field_name("name")
            written = f"mod {syn.text(name)};" if name is not None else "mod ...;"
            what = f"an out-of-line module (`{written}`)"
            self.findings.append(_finding(node, "out-of-line module", what, _FILE_WHY))

    def _tied_lifetimes(self, node: ts.Node) -> None:
        """Refuses a type whose own lifetime has another named lifetime inside it, and an
        outlives bound between lifetimes: each gives the compiler an implied bound."""
        kind = node.type
        if kind in ("lifetime_parameter", "where_predicate"):
            left = node.child_by_field_name("name" if kind == "lifetime_parameter" else "left")
            bounds = node.child_by_field_name("bounds")
            tied = (
                left is not None
                and left.type == "lifetime"
                and bounds is not None
                and any(c.type == "lifetime" for c in bounds.named_children)
            )
        else:
            if kind == "reference_type":
                own = [c for c in node.named_children if c.type == "lifetime"]
                inner = [node.child_by_field_name("type")]
            else:
                arguments = node.child_by_field_name("type_arguments")
                children = arguments.named_children if arguments is not None else []
                own = [c for c in children if c.type == "lifetime"]
                inner = [c for c in children if c.type != "lifetime"]
            names = {syn.text(c) for c in own} - {"'_"}
            nested = {
                syn.text(n)
                for part in inner
                if part is not None
                for n in syn.walk(part)
                if n.type == "lifetime"
            } - _FREE_LIFETIMES_EXCLUDED
            tied = bool(names) and bool(nested - names)
        if tied:
            written = " ".join(syn.text(node).split())
            written = written if len(written) <= 40 else written[:37] + "..."
            what = f"`{written}` (tied lifetimes)"
            self.findings.append(_finding(node, "tied lifetimes", what, _LIFETIMES_WHY))

    def _macro_rules(self, node: ts.Node) -> None:
        why = words.MACRO_RULES_WHY
        self.findings.append(_finding(node, "macro_rules!", "a `macro_rules!` definition", why))

    def _bind(self, uses: tuple[_Use, ...]) -> None:
        """Resolve `use` bindings to std paths; a few rounds settle uses that build on others."""
        for _ in range(4):
            changed = False
            for use in uses:
                if use.glob:
                    target = self.globs
                elif use.binding is not None:
                    target = self.aliases.setdefault(use.binding, set())
                else:
                    continue
                new = self._resolve(use.path) - target
                if new:
                    target |= new
                    changed = True
            if not changed:
                return

    def _resolve(self, path: RustPath) -> set[RustPath]:
        """The std paths ``path`` may denote (empty for local and unknown names)."""
        if not path:
            return set()
        head, rest = path[0], path[1:]
        if head == "":
            return {_std(rest)} if rest and rest[0] in _CRATES else set()
        if head in _CRATES:
            return {_std(path)}
        if head in ("crate", "self", "super"):
            return self._resolve(rest)
        found = {alias + rest for alias in self.aliases.get(head, ())}
        # Items the candidate defines shadow glob imports.
        if head not in self.locals:
            found |= {glob + path for glob in self.globs}
        return found

    def _denial(self, path: RustPath) -> str | None:
        """Why ``path`` is refused (the message's reason), or None when it is allowed."""
        joined = "::".join(path)
        for hook in _HOOKS:
            if _matches(joined, hook):
                return words.hook_why(hook)
        for catcher in _CATCHERS:
            if _matches(joined, catcher):
                return words.catcher_why(catcher)
        matching = [
            (len(rule), allowed, rule) for rule, allowed in self.rules if _matches(joined, rule)
        ]
        if not matching:
            return None
        _, allowed, rule = max(matching)
        if allowed:
            return None
        return words.path_why(rule)

    def _glue(self, node: ts.Node | tuple[int, int], path: RustPath) -> bool:
        if any(seg.startswith(_GLUE_PREFIXES) for seg in path):
            written = "::".join(path)
            self.findings.append(_finding(node, written, f"`{written}`", _GLUE_WHY))
            return True
        return False

    def _check_use(self, use: _Use) -> None:
        written = "::".join(use.path) + ("::*" if use.glob else "")
        if self._glue(use.point, use.path):
            return
        resolved = sorted(self._resolve(use.path))
        for path in resolved:
            why = self._denial(path)
            if why is not None:
                construct = "::".join(path) + ("::*" if use.glob else "")
                self.findings.append(_finding(use.point, construct, f"`use {written}`", why))
                return
        if use.glob:
            return
        # `use std::arch::global_asm as g;`, `use core::include_str as inc;`: the macro is
        # refused where it is imported, whatever it is called later.
        for path in resolved:
            reason = self._macro_reason(path[-1]) if len(path) >= 2 else None
            if reason is not None:
                construct, what, why = reason
                what = f"`use {written}` ({what})"
                self.findings.append(_finding(use.point, construct, what, why))
                return

    def _tokens(self, tokens: list[ts.Node]) -> None:
        raw = [syn.text(t) for t in tokens]
        kinds = [t.type for t in tokens]
        words = [_ident(w) if k in _SEGMENTS else w for w, k in zip(raw, kinds, strict=True)]
        n = len(tokens)
        i = 0
        while i < n:
            word, kind = words[i], kinds[i]
            prev = words[i - 1] if i else ""
            if raw[i] == "unsafe":
                parent = tokens[i].parent
                construct, what = _UNSAFE_FORMS.get(
                    parent.type if parent else "", ("unsafe", "`unsafe`")
                )
                self.findings.append(_finding(tokens[i], construct, what, _UNSAFE_WHY))
            elif word == "#":
                self._attribute(tokens, words, i)
            starts_path = kind in _SEGMENTS and prev not in ("::", ".", "'")
            absolute = (
                word == "::"
                and i + 1 < n
                and kinds[i + 1] in _SEGMENTS
                and prev != ">"
                and (i == 0 or kinds[i - 1] not in _SEGMENTS)
            )
            if not (starts_path or absolute):
                i += 1
                continue
            segments = [""] if absolute else []
            j = i + 1 if absolute else i
            while True:
                segments.append(words[j])
                j += 1
                if not (j + 1 < n and words[j] == "::" and kinds[j + 1] in _SEGMENTS):
                    break
                j += 1
            if j < n and words[j] == "!":
                self._macro(tokens[i], tuple(segments))
            else:
                self._path(tokens[i], tuple(segments))
            i = j

    def _attribute(self, tokens: list[ts.Node], words: list[str], at: int) -> None:
        i = at + 1
        if i < len(words) and words[i] == "!":
            i += 1
        if i >= len(words) or words[i] != "[":
            return
        depth = 0
        for k in range(i, len(words)):
            depth += (words[k] == "[") - (words[k] == "]")
            if depth == 0:
                return
            name = words[k].removeprefix("r#")
            # `target_feature = "avx2"` is a harmless `cfg` predicate; the attribute takes `(`.
            if name == "target_feature" and (k + 1 >= len(words) or words[k + 1] != "("):
                continue
            if name in _ATTRIBUTES and tokens[k].type == "identifier":
                self.findings.append(
                    _finding(tokens[k], f"#[{name}]", f"the `#[{name}]` attribute",
                             _ATTRIBUTES[name])
                )  # fmt: skip

    def _macro(self, node: ts.Node, segments: RustPath) -> None:
        # A macro is known by its name, and by what a `use` alias of it resolves to.
        names = {segments[-1].removeprefix("r#")} | {
            p[-1] for p in self._resolve(segments) if len(p) >= 2
        }
        for name in sorted(names):
            if name == "macro_rules":
                self._macro_rules(node)
                return
            reason = self._macro_reason(name)
            if reason is not None:
                self.findings.append(_finding(node, *reason))
                return

    def _macro_reason(self, name: str) -> tuple[str, str, str] | None:
        """(construct, what, why) when the macro ``name`` is refused."""
        if name in _ASM_MACROS:
            return f"{name}!", f"the `{name}!` macro", _ASM_WHY
        if name in self.denied_macros:
            why = words.macro_why(name, build_machine=name in DEFAULT_DENIED_MACROS)
            return f"{name}!", f"the `{name}!` macro", why
        if name == "thread_local":
            return "thread_local!", "`thread_local!`", _STATE_WHY
        return None

    def _path(self, node: ts.Node, path: RustPath) -> None:
        if self._glue(node, path):
            return
        for resolved in sorted(self._resolve(path)):
            why = self._denial(resolved)
            if why is not None:
                written, full = "::".join(path), "::".join(resolved)
                what = f"`{written}`" + (f" (that is `{full}`)" if written != full else "")
                self.findings.append(_finding(node, full, what, why))
                return


def scan(root: ts.Node, decls: Declarations, policy: Policy) -> list[Finding]:
    """Every forbidden construct, denied path and denied macro in the tree, by line."""
    return _Scan(decls, policy).run(root)
