"""A parser with the rules of Docker's ``mflag`` package, as the Go ``containers-storage`` uses it.

The rules (``shared/spec/cli.md`` 2.2): ``--long`` and ``-x`` spellings, ``=value`` or the next
argument as the value of a non-boolean option, surrounding quotes of ``="x"`` stripped, booleans
that never consume the next argument, single-dash letter groups (``-qj``), repeatable list
options, later string values winning, and parsing that stops at the first positional argument
(``--`` is consumed, a lone ``-`` is positional).

This module knows nothing about commands or stores: it turns a list of :class:`Flag` and an
argument list into values, or raises :class:`FlagError` / :class:`HelpRequested`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

Kind = Literal["bool", "string", "list"]

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class FlagError(Exception):
    """A malformed option: undefined, missing its value, or a bad boolean."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HelpRequested(Exception):
    """``-h``/``--help`` (or the deprecated ``-help``) was given."""

    def __init__(self, spelling: str, deprecated: bool = False) -> None:
        super().__init__(spelling)
        self.spelling = spelling
        self.deprecated = deprecated


class Flag(NamedTuple):
    """One option: its double-dash names, single-dash letters, type and destination."""

    dest: str
    long: tuple[str, ...] = ()
    short: tuple[str, ...] = ()
    kind: Kind = "string"
    default: Any = None
    help: str = ""
    #: Long names that are also accepted with a single dash, with a deprecation warning.
    deprecated: tuple[str, ...] = ()

    def initial(self) -> Any:
        """The value before any occurrence was parsed."""
        if self.kind == "list":
            return list(self.default or [])
        if self.kind == "bool":
            return bool(self.default)
        return "" if self.default is None else str(self.default)


def parse_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``: ``None`` when ``text`` is not a boolean."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


class ParseResult:
    """Parsed values by destination, which destinations were given, and the remaining arguments."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.given: set[str] = set()
        self.args: list[str] = []
        #: The deprecated spellings that were used (for warnings).
        self.deprecated_used: list[str] = []


class FlagSet:
    """A set of :class:`Flag` parsed with mflag rules."""

    def __init__(self, flags: Iterable[Flag], *, help_flags: bool = False) -> None:
        """``help_flags``: ``h``/``help`` are handled as help requests when not defined."""
        self.flags: list[Flag] = list(flags)
        self.help_flags = help_flags
        self._long: dict[str, Flag] = {}
        self._short: dict[str, Flag] = {}
        self._deprecated: dict[str, Flag] = {}
        for flag in self.flags:
            for name in flag.long:
                self._long[name] = flag
            for name in flag.short:
                self._short[name] = flag
            for name in flag.deprecated:
                self._deprecated[name] = flag

    def initial_values(self) -> dict[str, Any]:
        """Every destination with its default value."""
        return {flag.dest: flag.initial() for flag in self.flags}

    def parse(self, args: Sequence[str], values: dict[str, Any] | None = None) -> ParseResult:
        """Parse ``args``; ``values`` (copied) are the starting values, e.g. from an earlier phase."""
        result = ParseResult(values=dict(values) if values is not None else self.initial_values())
        for flag in self.flags:
            result.values.setdefault(flag.dest, flag.initial())
        i = 0
        n = len(args)
        while i < n:
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if len(arg) < 2 or arg[0] != "-":
                break
            i = self._parse_one(args, i, result)
        result.args = list(args[i:])
        return result

    # -- one argument -------------------------------------------------------------------------

    def _parse_one(self, args: Sequence[str], i: int, result: ParseResult) -> int:
        arg = args[i]
        double = arg.startswith("--")
        body = arg[2:] if double else arg[1:]
        name, eq, value = body.partition("=")
        has_value = bool(eq)
        dashes = "--" if double else "-"
        shown = dashes + name
        flag = self._long.get(name) if double else self._short.get(name)
        if flag is None and not double and name in self._deprecated:
            flag = self._deprecated[name]
            result.deprecated_used.append(shown)
        if flag is None:
            if self.help_flags and name in ("h", "help"):
                raise HelpRequested(shown)
            if not double and not has_value and len(name) > 1:
                return self._parse_group(args, i, result)
            raise FlagError(f"flag provided but not defined: {shown}")
        if flag.kind == "bool":
            if has_value:
                parsed = parse_bool(_strip_quotes(value))
                if parsed is None:
                    raise FlagError(
                        f'invalid boolean value "{value}" for  {shown}: strconv.ParseBool: parsing "{value}": invalid syntax'
                    )
            else:
                parsed = True
            self._store(flag, parsed, result)
            return i + 1
        if has_value:
            self._store(flag, _strip_quotes(value), result)
            return i + 1
        if i + 1 >= len(args):
            raise FlagError(f"flag needs an argument: {shown}")
        self._store(flag, args[i + 1], result)
        return i + 2

    def _parse_group(self, args: Sequence[str], i: int, result: ParseResult) -> int:
        """``-qj``: every letter must be a known single-letter option."""
        arg = args[i]
        letters = arg[1:]
        flags = [self._short.get(letter) for letter in letters]
        if any(flag is None for flag in flags):
            raise FlagError(f"flag provided but not defined: {arg}")
        nxt = i + 1
        for letter, flag in zip(letters, flags):
            assert flag is not None
            if flag.kind == "bool":
                self._store(flag, True, result)
                continue
            if nxt >= len(args):
                raise FlagError(f"flag needs an argument: -{letter}")
            self._store(flag, args[nxt], result)
            nxt += 1
        return nxt

    @staticmethod
    def _store(flag: Flag, value: Any, result: ParseResult) -> None:
        result.given.add(flag.dest)
        if flag.kind == "list":
            current = result.values.get(flag.dest)
            result.values[flag.dest] = [*(current or []), value]
        else:
            result.values[flag.dest] = value

    # -- help text ----------------------------------------------------------------------------

    def format_table(self) -> str:
        """The option table Go prints on stderr: a blank line, then aligned ``--long, -s`` rows."""
        rows: list[tuple[str, str]] = []
        for flag in sorted(self.flags, key=lambda f: (f.long or f.short)[0]):
            spell = ", ".join([f"--{n}" for n in flag.long] + [f"-{n}" for n in flag.short])
            if flag.kind == "list":
                spell += "=[" + " ".join(flag.default or []) + "]"
            elif flag.kind == "string" and flag.default:
                spell += f"={flag.default}"
            rows.append(("  " + spell, flag.help))
        if not rows:
            return "\n"
        width = max(len(left) for left, _ in rows) + 4
        return "\n" + "".join(f"{left.ljust(width)}{text}\n" for left, text in rows)


def go_list(items: Iterable[Any]) -> str:
    """Go's ``%v`` of a slice: ``[a b c]``."""
    return "[" + " ".join(str(item) for item in items) + "]"
