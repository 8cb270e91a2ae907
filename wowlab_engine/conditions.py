"""APL conditions: parse once, compile to a bytecode the compiled loop evaluates.

Grammar (SimulationCraft-like)::

    expr    := and ('|' and)*
    and     := unary ('&' unary)*
    unary   := '!' unary | compare
    compare := operand (('<' | '<=' | '>' | '>=' | '=' | '==' | '!=') operand)?
    operand := number | reference | '(' expr ')'

References: ``buff.X.up|down|stack|remains``, ``debuff.X.*`` / ``dot.X.ticking|remains|stack|up``
(on the primary target), ``cooldown.X.ready|remains|charges``, ``charges.X``, ``resource``
(the first resource), ``resource.R`` or bare ``R`` (a resource name), ``target.health_pct``,
``active_enemies``, ``time``, ``fight_remains``. Times are in seconds.

The bytecode is a flat list of ``(opcode, argument)`` pairs for a stack machine over floats;
numbers live in a separate constant table.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from wowlab_core.errors import ConfigInvalid
from wowlab_engine.sim.opcodes import (
    OP_ACTIVE_ENEMIES,
    OP_AND,
    OP_AURA_REMAINS,
    OP_AURA_STACK,
    OP_CHARGES,
    OP_CONST,
    OP_COOLDOWN_REMAINS,
    OP_EQ,
    OP_FIGHT_REMAINS,
    OP_GE,
    OP_GT,
    OP_HEALTH_PCT,
    OP_IS_TRUE,
    OP_LE,
    OP_LT,
    OP_NE,
    OP_NOT,
    OP_OR,
    OP_RESOURCE,
    OP_TIME,
)

MAX_CODE = 256
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<ref>[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)"
    r"|(?P<op><=|>=|==|!=|[<>=!&|()]))"
)
_COMPARE = {"<": OP_LT, "<=": OP_LE, ">": OP_GT, ">=": OP_GE, "=": OP_EQ, "==": OP_EQ, "!=": OP_NE}


@dataclass(frozen=True)
class Names:
    """What a condition may refer to: name -> index, and which auras sit on targets."""

    auras: Mapping[str, int]
    target_auras: frozenset[str]
    spells: Mapping[str, int]
    resources: Mapping[str, int]


@dataclass
class Bytecode:
    """Compiled condition: ``code`` is a flat list of (opcode, argument) pairs."""

    code: list[tuple[int, int]] = field(default_factory=list)
    constants: list[float] = field(default_factory=list)
    max_stack: int = 0


def _suggest(name: str, known: Mapping[str, int] | frozenset[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Parser:
    def __init__(self, text: str, names: Names, const_base: int) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.names = names
        self.out = Bytecode()
        self.const_base = const_base
        self.depth = 0
        self.stack = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        i = 0
        text = text.rstrip()
        while i < len(text):
            m = _TOKEN.match(text, i)
            if m is None or m.end() == i:
                raise ValueError(f"unexpected character {text[i:].lstrip()[:1]!r}")
            kind = m.lastgroup
            assert kind is not None
            tokens.append((kind, m.group(kind)))
            i = m.end()
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def emit(self, op: int, arg: int = 0, push: int = 0) -> None:
        if len(self.out.code) >= MAX_CODE:
            raise ValueError("condition is too long")
        self.out.code.append((op, arg))
        self.stack += push
        self.out.max_stack = max(self.out.max_stack, self.stack)

    def parse(self) -> Bytecode:
        if not self.tokens:
            raise ValueError("empty condition")
        self.expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return self.out

    def expr(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError("condition is nested too deeply")
        self.conjunction()
        while self.peek() == ("op", "|"):
            self.pos += 1
            self.conjunction()
            self.emit(OP_OR, push=-1)
        self.depth -= 1

    def conjunction(self) -> None:
        self.unary()
        while self.peek() == ("op", "&"):
            self.pos += 1
            self.unary()
            self.emit(OP_AND, push=-1)

    def unary(self) -> None:
        if self.peek() == ("op", "!"):
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ValueError("condition is nested too deeply")
            self.unary()
            self.depth -= 1
            self.emit(OP_NOT)
            return
        self.compare()

    def compare(self) -> None:
        self.operand()
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in _COMPARE:
            self.pos += 1
            self.operand()
            self.emit(_COMPARE[tok[1]], push=-1)

    def operand(self) -> None:
        tok = self.peek()
        if tok is None:
            raise ValueError("condition ends too early")
        kind, text = tok
        self.pos += 1
        if kind == "num":
            self.out.constants.append(float(text))
            self.emit(OP_CONST, self.const_base + len(self.out.constants) - 1, push=1)
        elif kind == "ref":
            self.reference(text)
        elif text == "(":
            self.expr()
            if self.peek() != ("op", ")"):
                raise ValueError("missing ')'")
            self.pos += 1
        else:
            raise ValueError(f"unexpected {text!r}")

    def aura(self, name: str, on_target: bool) -> int:
        names = self.names
        if name not in names.auras:
            raise ValueError(f"unknown aura '{name}'{_suggest(name, names.auras)}")
        if on_target and name not in names.target_auras:
            raise ValueError(f"aura '{name}' is on the player: use buff.{name}")
        if not on_target and name in names.target_auras:
            raise ValueError(f"aura '{name}' is on the target: use dot.{name} or debuff.{name}")
        return names.auras[name]

    def spell(self, name: str) -> int:
        if name not in self.names.spells:
            raise ValueError(f"unknown spell '{name}'{_suggest(name, self.names.spells)}")
        return self.names.spells[name]

    def reference(self, text: str) -> None:
        parts = text.split(".")
        names = self.names
        head = parts[0]
        simple = {
            "time": OP_TIME,
            "fight_remains": OP_FIGHT_REMAINS,
            "active_enemies": OP_ACTIVE_ENEMIES,
        }
        if len(parts) == 1 and head in simple:
            self.emit(simple[head], push=1)
        elif parts == ["target", "health_pct"]:
            self.emit(OP_HEALTH_PCT, push=1)
        elif head == "resource" and len(parts) <= 2:
            if not names.resources:
                raise ValueError("the actor has no resource")
            if len(parts) == 1:
                self.emit(OP_RESOURCE, 0, push=1)
            elif parts[1] in names.resources:
                self.emit(OP_RESOURCE, names.resources[parts[1]], push=1)
            else:
                raise ValueError(
                    f"unknown resource '{parts[1]}'{_suggest(parts[1], names.resources)}"
                )
        elif len(parts) == 1 and head in names.resources:
            self.emit(OP_RESOURCE, names.resources[head], push=1)
        elif head in ("buff", "debuff", "dot") and len(parts) == 3:
            aura = self.aura(parts[1], on_target=head != "buff")
            prop = "up" if parts[2] == "ticking" and head != "buff" else parts[2]
            if prop in ("up", "down"):
                self.emit(OP_AURA_STACK, aura, push=1)
                self.emit(OP_IS_TRUE if prop == "up" else OP_NOT)
            elif prop in ("stack", "stacks"):
                self.emit(OP_AURA_STACK, aura, push=1)
            elif prop == "remains":
                self.emit(OP_AURA_REMAINS, aura, push=1)
            else:
                raise ValueError(f"unknown property '{parts[2]}' of {head}.{parts[1]}")
        elif head == "cooldown" and len(parts) == 3:
            spell = self.spell(parts[1])
            if parts[2] in ("ready", "up"):
                self.emit(OP_CHARGES, spell, push=1)
                self.emit(OP_IS_TRUE)
            elif parts[2] == "remains":
                self.emit(OP_COOLDOWN_REMAINS, spell, push=1)
            elif parts[2] == "charges":
                self.emit(OP_CHARGES, spell, push=1)
            else:
                raise ValueError(f"unknown property '{parts[2]}' of cooldown.{parts[1]}")
        elif head == "charges" and len(parts) == 2:
            self.emit(OP_CHARGES, self.spell(parts[1]), push=1)
        else:
            raise ValueError(f"unknown expression '{text}'")


def compile_condition(text: str, names: Names, *, path: str, const_base: int = 0) -> Bytecode:
    """Parse ``text`` and compile it; constant indices start at ``const_base``.

    An empty condition compiles to "always true".

    Raises:
        ConfigInvalid: naming ``path`` and what is wrong.
    """
    if not text.strip():
        return Bytecode(code=[], constants=[], max_stack=0)
    try:
        return _Parser(text, names, const_base).parse()
    except ValueError as exc:
        raise ConfigInvalid(f"{path}: {exc}", field=path) from None
