"""The ``multi`` grader's ``calculate_output``: a small arithmetic language, parsed without ``eval``.

Grammar (the operators and functions the graders guide lists)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := ("-" | "+") unary | power
    power  := atom ("^" unary)?            # right-associative, binds tighter than unary minus
    atom   := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Functions: ``min max`` (one or more arguments), ``abs floor ceil exp sqrt log`` (one; ``log`` is
the natural logarithm). Names are the sub-graders' keys. A formula is parsed once, when the grader
loads: a syntax error or an unknown name is a :class:`FormulaError` then, never mid-training.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Formula", "FormulaError", "parse_formula"]

_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_]\w*)|(\*\*|[-+*/^(),]))"
)

_FUNCTIONS: dict[str, tuple[Callable[..., float], int | None]] = {
    "min": (min, None),
    "max": (max, None),
    "abs": (abs, 1),
    "floor": (lambda x: float(math.floor(x)), 1),
    "ceil": (lambda x: float(math.ceil(x)), 1),
    "exp": (math.exp, 1),
    "sqrt": (math.sqrt, 1),
    "log": (math.log, 1),
}


class FormulaError(ValueError):
    """A ``calculate_output`` that does not parse, or names no sub-grader."""


@dataclass(frozen=True)
class _Num:
    value: float


@dataclass(frozen=True)
class _Var:
    name: str


@dataclass(frozen=True)
class _Op:
    op: str
    args: tuple[_Node, ...]


_Node = _Num | _Var | _Op


@dataclass(frozen=True)
class Formula:
    """A parsed formula; :meth:`evaluate` raises ``ArithmeticError``/``ValueError`` on bad math."""

    text: str
    tree: _Node
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, float]) -> float:
        return float(_eval(self.tree, values))


def parse_formula(text: str, names: Sequence[str] | None = None) -> Formula:
    """Parse ``text``; with ``names``, every variable must be one of them."""
    tokens = _tokenize(text)
    parser = _Parser(tokens, text)
    tree = parser.expr()
    if parser.position != len(tokens):
        raise FormulaError(f"unexpected {tokens[parser.position]!r} in {text!r}")
    used = frozenset(_names(tree))
    if names is not None:
        unknown = sorted(used - set(names))
        if unknown:
            raise FormulaError(
                f"{text!r} names {', '.join(unknown)}, not among the graders: {', '.join(names)}"
            )
    return Formula(text=text, tree=tree, names=used)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FormulaError(f"cannot read {text[position:].strip()[:20]!r} in {text!r}")
        tokens.append(next(g for g in match.groups() if g is not None))
        position = match.end()
    if not tokens:
        raise FormulaError("the formula is empty")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None:
            raise FormulaError(f"{self.text!r} ends too early")
        if expected is not None and token != expected:
            raise FormulaError(f"expected {expected!r}, found {token!r} in {self.text!r}")
        self.position += 1
        return token

    def expr(self) -> _Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = _Op(op, (node, self.term()))
        return node

    def term(self) -> _Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = _Op(op, (node, self.unary()))
        return node

    def unary(self) -> _Node:
        if self.peek() in ("-", "+"):
            op = self.take()
            operand = self.unary()
            return _Op("neg", (operand,)) if op == "-" else operand
        return self.power()

    def power(self) -> _Node:
        base = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            return _Op("^", (base, self.unary()))
        return base

    def atom(self) -> _Node:
        token = self.take()
        if token == "(":
            node = self.expr()
            self.take(")")
            return node
        if token[0].isdigit() or token[0] == ".":
            return _Num(float(token))
        if token[0].isalpha() or token[0] == "_":
            if self.peek() != "(":
                return _Var(token)
            if token not in _FUNCTIONS:
                raise FormulaError(f"unknown function {token!r} in {self.text!r}")
            self.take("(")
            args = [self.expr()]
            while self.peek() == ",":
                self.take()
                args.append(self.expr())
            self.take(")")
            arity = _FUNCTIONS[token][1]
            if arity is not None and len(args) != arity:
                raise FormulaError(f"{token}() takes {arity} argument(s), got {len(args)}")
            return _Op(token, tuple(args))
        raise FormulaError(f"unexpected {token!r} in {self.text!r}")


def _names(node: _Node) -> list[str]:
    if isinstance(node, _Var):
        return [node.name]
    if isinstance(node, _Op):
        return [n for arg in node.args for n in _names(arg)]
    return []


def _eval(node: _Node, values: Mapping[str, float]) -> float:
    if isinstance(node, _Num):
        return node.value
    if isinstance(node, _Var):
        return float(values[node.name])
    args = [_eval(arg, values) for arg in node.args]
    if node.op == "neg":
        return -args[0]
    if node.op == "+":
        return args[0] + args[1]
    if node.op == "-":
        return args[0] - args[1]
    if node.op == "*":
        return args[0] * args[1]
    if node.op == "/":
        return args[0] / args[1]
    if node.op == "^":
        result = args[0] ** args[1]
        if isinstance(result, complex):
            raise ValueError(f"{args[0]} ^ {args[1]} is not a real number")
        return float(result)
    return float(_FUNCTIONS[node.op][0](*args))
