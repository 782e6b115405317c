"""GBNF grammars that make a local model's reply valid by construction.

From the runtime's declarations: the reply is Rust code that starts with the exact declared
signature(s), in order, each with a brace-balanced body; optionally helper functions and
structs, enums and impls of the reply's own (or impls for the prelude's shared types) may come
before, between and after them; string literals are whole tokens (so braces inside them do not
count); and no word of the code is ``unsafe``. Signature mismatches become impossible; the
validator still runs on everything.
"""

from __future__ import annotations

import json

from symbiont._decl import Declarations, FunctionDecl

# Any word (identifier, keyword or number) except exactly `unsafe`: the DFA of the complement
# of one word, written out. Words are separated by at least one non-word token in `seq`, so two
# words can never be glued together into `unsafe`.
_WORD_RULES = r"""
word ::= "u" w1? | [a-tv-zA-Z0-9_] wc*
w1 ::= "n" w2? | [a-mo-zA-Z0-9_] wc*
w2 ::= "s" w3? | [a-rt-zA-Z0-9_] wc*
w3 ::= "a" w4? | [b-zA-Z0-9_] wc*
w4 ::= "f" w5? | [a-eg-zA-Z0-9_] wc*
w5 ::= "e" wc+ | [a-df-zA-Z0-9_] wc*
wc ::= [a-zA-Z0-9_]
"""

_BODY_RULES = r"""
block ::= "{" seq "}"
seq ::= (word? sep)* word?
sep ::= ws1 | punct | plus | slash | string | block SEP_EXTRA
ws1 ::= [ \t\n]
punct ::= [-*%=<>!&|^~?:;,.#@$()\[\]'\\]
plus ::= "+" [ =]
slash ::= "/" [ =]
string ::= "\"" ([^"\\] | "\\" [^\n])* "\""
comment ::= "//" [^\n]* "\n"
ws ::= [ \t\n]*
helper ::= attr* (fnitem | typeitem)
attr ::= "#[" [^\]\n]* "]" "\n" ws
fnitem ::= "fn " word "(" [^(){}]* ")" hret " " block
hret ::= "" | " -> " ([^{};\[] | "[" [^\]{}]* "]")+
typeitem ::= "pub "? ("struct " | "enum " | "impl") [^{};]+ block
"""


def _literal(text: str) -> str:
    return json.dumps(text)


def signature_head(f: FunctionDecl) -> str:
    """The exact text a reply's function must start with (declared signature + `{`)."""
    return f"{f.signature} "


def build_grammar(decls: Declarations, *, helpers: bool = False) -> str:
    """A GBNF grammar for replies implementing ``decls``.

    Without ``helpers`` the reply is exactly the declared functions, in order (helpers can
    still be nested inside a body): a base model continues a file forever, so the grammar
    ending after the last function is what stops it. With ``helpers``, free functions, structs,
    enums and impls may come before, between and after them (instruction-tuned models stop by
    themselves).
    """
    lines = []
    parts: list[str] = []
    for i, f in enumerate(decls.functions):
        lines.append(f"f{i} ::= {_literal(signature_head(f))} block")
        parts.append(f"f{i}")
    if helpers:
        body = ' ws (helper "\\n" ws)* '.join(parts)
        root = f'root ::= ws (helper "\\n" ws)* {body} ("\\n" ws helper)* ws'
    else:
        root = f"root ::= {' ws '.join(parts)}"
    # Comments only in the helpers form: tiny base models, given the choice, answer with a
    # comment ("// TODO") instead of code. Without `comment`, a slash must be followed by a space
    # or `=`, so `//` and `/*` cannot be spelled out of punctuation either. Likewise `+` (never
    # `++`, which small models borrow from C and which is not Rust).
    body = _BODY_RULES.strip().replace(" SEP_EXTRA", " | comment" if helpers else "")
    return "\n".join([root, *lines, body, _WORD_RULES.strip()]) + "\n"
