"""What the generated Avro writer and reader share: walking a schema into Python source, once per schema.

A subclass turns each schema node into lines of code; this base keeps the generated functions (one per named record
or enum), resolves named types by full name as Avro's namespaces say, holds the constants the code refers to, and
compiles the source.  Only ``null`` unions of one type are generated; anything else raises :class:`NotCompilable`
and the caller keeps fastavro.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class NotCompilable(ValueError):
    """The schema uses something the generated code does not cover."""


class SchemaCode:
    #: Prefix of the generated functions' names (``w`` for the writer, ``r`` for the reader).
    prefix = "f"
    #: Their parameters.
    params = "out, v"

    def __init__(self) -> None:
        self.functions: list[str] = []
        self.names: dict[str, str] = {}  # Avro full name (and short name) → generated function
        self.constants: dict[str, Any] = {}
        self._count = 0

    def node(self, schema: Any, var: str, ns: str, lines: list[str], pad: str) -> dict[str, Any] | None:
        """The common part of generating a node: a primitive by name, a named type, a union; else the schema as a
        dict for the subclass to go on with (None: done)."""
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                self.primitive(schema, var, lines, pad)
            else:
                self.call_named(self.named(schema, ns), var, lines, pad)
            return None
        if isinstance(schema, list):
            self.union(schema, var, ns, lines, pad)
            return None
        if not isinstance(schema, dict):
            raise NotCompilable(f"schema {schema!r}")
        return schema

    def primitive(self, kind: str, var: str, lines: list[str], pad: str) -> None:
        raise NotImplementedError

    def call_named(self, fn: str, var: str, lines: list[str], pad: str) -> None:
        raise NotImplementedError

    def union(self, branches: list[Any], var: str, ns: str, lines: list[str], pad: str) -> None:
        raise NotImplementedError

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def var(self) -> str:
        self._count += 1
        return f"v{self._count}"

    @staticmethod
    def full_name(schema: dict[str, Any], ns: str) -> str:
        name = str(schema["name"])
        if "." in name:
            return name
        space = schema.get("namespace", ns)
        return f"{space}.{name}" if space else name

    def named(self, name: str, ns: str) -> str:
        """The function of a named type referred to by ``name`` in namespace ``ns``."""
        full = name if "." in name else (f"{ns}.{name}" if ns else name)
        fn = self.names.get(full) or self.names.get(name)
        if fn is None:
            raise NotCompilable(f"unknown named type {name!r}")
        return fn

    def define(self, schema: dict[str, Any], ns: str) -> tuple[str, str, int]:
        """Register a named type: its function's name, the namespace inside it, and the slot its source goes to
        (reserved now: types nested in it are generated while it is)."""
        full = self.full_name(schema, ns)
        fn = f"{self.prefix}_{len(self.functions)}_{full.replace('.', '_')}"
        self.names[full] = fn
        self.names.setdefault(str(schema["name"]), fn)
        self.functions.append("")
        return fn, (full.rsplit(".", 1)[0] if "." in full else ""), len(self.functions) - 1

    @staticmethod
    def nullable(branches: list[Any]) -> tuple[Any, int | None]:
        """A union's one non-null branch and the index of ``null`` in it (None: no null)."""
        others = [b for b in branches if b != "null"]
        if len(others) != 1 or len(branches) > 2:
            raise NotCompilable(f"union {branches!r}: only null and one type are generated")
        return others[0], (branches.index("null") if "null" in branches else None)

    def compile(self, entry: str, scope: dict[str, Any]) -> Callable[..., Any]:
        """The generated functions plus ``entry`` (the top-level function's source), compiled; its function."""
        source = "\n".join(self.functions) + "\n" + entry
        namespace = {**scope, **self.constants}
        exec(compile(source, f"<avro {self.prefix}>", "exec"), namespace)  # noqa: S102 - generated from the schema
        name = entry.split("(", 1)[0].removeprefix("def ").strip()
        fn: Callable[..., Any] = namespace[name]
        return fn
