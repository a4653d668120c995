"""The function registry: one record per render function, written where it is defined.

``@render_function(group=..., params=[...], aliases=[...])`` records the name, group
and typed parameters. The ``/functions`` endpoint and the validation that turns a
wrong argument into HTTP 400 both read that record, so they cannot disagree.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from . import aggfuncs
from .errors import InputError
from .series import Series
from .timeparse import parse_offset

FUNCTIONS: dict[str, "FunctionInfo"] = {}


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError


def _float(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    return float(value)


def _integer(value):
    if isinstance(value, (bool, float)) or not isinstance(value, (int, str)):
        raise ValueError
    return int(value)


def _int_or_inf(value):
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return value
    return _integer(value)


def _interval(value):
    if not isinstance(value, str):
        raise ValueError
    parse_offset(value)
    return value


def _int_or_interval(value):
    if isinstance(value, str):
        return _interval(value)
    return _integer(value)


def _series_list(value):
    if not isinstance(value, list) or not all(isinstance(s, Series) for s in value):
        raise ValueError
    return value


def _series_lists(value):
    """mapSeries' output: a list of series lists (reduceSeries' input)."""
    if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
        raise ValueError
    for lst in value:
        _series_list(lst)
    return value


def _date(value):
    """An at-time (``-1h``, ``20231114``, epoch seconds); functions parse it against the
    request's now and time zone."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError
    return value


def _node_or_tag(value):
    if isinstance(value, (bool, float)) or not isinstance(value, (int, str)):
        raise ValueError
    return value


def _string(value):
    if not isinstance(value, str):
        raise ValueError
    return value


def _agg_func(value):
    if not isinstance(value, str):
        raise ValueError
    aggfuncs.canonical(value)  # the names the reducers accept, "...Series" forms included
    return value


def _agg_or_series_func(value):
    try:
        return _agg_func(value)
    except ValueError:
        if isinstance(value, str) and value in FUNCTIONS and FUNCTIONS[value].aggregator:
            return value
        raise


def _any(value):
    return value


VALIDATORS: dict[str, Callable] = {
    "boolean": _boolean, "float": _float, "integer": _integer, "intOrInf": _int_or_inf,
    "interval": _interval, "intOrInterval": _int_or_interval, "node": _integer,
    "nodeOrTag": _node_or_tag, "seriesList": _series_list, "seriesLists": _series_lists, "string": _string,
    "date": _date, "tag": _string,
    "aggFunc": _agg_func, "aggOrSeriesFunc": _agg_or_series_func, "any": _any,
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool = False
    default: object = None
    multiple: bool = False
    options: tuple = ()
    suggestions: tuple = ()

    def __post_init__(self) -> None:
        if self.type not in VALIDATORS:
            raise TypeError(f"unknown parameter type {self.type!r}")

    def to_json(self) -> dict:
        out: dict = {"name": self.name, "type": self.type}
        if self.required:
            out["required"] = True
        if self.default is not None:
            out["default"] = self.default
        if self.multiple:
            out["multiple"] = True
        options = list(self.options)
        if self.type in ("aggFunc", "aggOrSeriesFunc"):
            options += aggfuncs.AGG_FUNC_NAMES
        if self.type == "aggOrSeriesFunc":
            options += [name for name, info in FUNCTIONS.items() if info.aggregator]
        if options:
            out["options"] = sorted(set(options), key=str)  # as graphite-web lists them
        if self.suggestions:
            out["suggestions"] = list(self.suggestions)
        return out

    def validate(self, value, func: str):
        if self.options and value not in self.options:
            raise InputError(f'invalid option for function "{func}" parameter "{self.name}": {value!r} '
                             f"(one of {', '.join(map(str, self.options))})")
        try:
            return VALIDATORS[self.type](value)
        except (ValueError, TypeError, InputError):
            shown = _describe(value)
            raise InputError(f'invalid "{self.type}" value for function "{func}" parameter "{self.name}": {shown}') from None


def _describe(value) -> str:
    if isinstance(value, list):
        return f"a series list ({len(value)} series)"
    return repr(value)


@dataclass
class FunctionInfo:
    name: str
    func: Callable
    group: str
    params: list[Param]
    aggregator: bool = False
    aliases: tuple[str, ...] = ()
    description: str = field(default="")
    #: required parameters the function still defaults: graphite-web lists ``highest``'s
    #: ``n`` as required yet answers ``highest(x)`` with n=1 (and ``sumSeries()`` with no
    #: series), as its validation only logs
    defaulted: frozenset[str] = frozenset()

    def validate(self, args: list, kwargs: dict) -> tuple[list, dict]:
        """Check argument count, types and options; InputError naming the parameter."""
        params = self.params
        if len(args) > len(params) and not (params and params[-1].multiple):
            raise InputError(f'too many arguments for function "{self.name}" (at most {len(params)})')
        valid_args = []
        for i, value in enumerate(args):
            param = params[min(i, len(params) - 1)]
            valid_args.append(param.validate(value, self.name))
        by_name = {p.name: p for p in params}
        valid_kwargs = {}
        for key, value in kwargs.items():
            param = by_name.get(key)
            if param is None:
                raise InputError(f'unexpected keyword argument "{key}" for function "{self.name}"')
            if params.index(param) < len(args):
                raise InputError(f'argument "{key}" given twice to function "{self.name}"')
            if value is None and not param.required:
                continue
            valid_kwargs[key] = param.validate(value, self.name)
        for i, param in enumerate(params):
            if param.required and i >= len(args) and param.name not in valid_kwargs \
                    and param.name not in self.defaulted:
                raise InputError(f'missing required parameter "{param.name}" for function "{self.name}"')
        return valid_args, valid_kwargs

    def signature(self, name: str | None = None) -> str:
        """The call as Python declares it (graphite-web's ``function`` field), so defaults the
        record leaves out show: ``highest(seriesList, n=1, func='average')``."""
        parts = []
        for p in list(inspect.signature(self.func).parameters.values())[1:]:  # after the context
            if p.kind is p.VAR_POSITIONAL:
                parts.append("*" + p.name)
            elif p.default is p.empty:
                parts.append(p.name)
            else:
                parts.append(f"{p.name}={p.default!r}")
        return f"{name or self.name}({', '.join(parts)})"

    def to_json(self, name: str | None = None) -> dict:
        return {
            "name": name or self.name,
            "function": self.signature(name),
            "description": self.description,
            "module": "graphite.render.functions",
            "group": self.group,
            "params": [p.to_json() for p in self.params],
        }


def render_function(group: str, params: list[Param], aliases: tuple[str, ...] = (), aggregator: bool = False,
                    name: str | None = None, doc: str | None = None):
    """Register a render function; the Python parameters must follow ``params``.

    ``name`` and ``doc`` default to the function's own; families built by one factory
    (sumSeries/maxSeries, movingSum/movingMax, ...) give theirs here."""

    def register(func: Callable) -> Callable:
        fname = name or func.__name__
        defaulted = frozenset(p.name for p in inspect.signature(func).parameters.values()
                              if p.default is not p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
                              or p.kind is p.VAR_POSITIONAL)
        info = FunctionInfo(fname, func, group, list(params), aggregator, tuple(aliases),
                            doc if doc is not None else inspect.getdoc(func) or "", defaulted)
        for key in (fname, *aliases):
            if key in FUNCTIONS:
                raise ValueError(f"render function {key!r} registered twice")
            FUNCTIONS[key] = info
        return func

    return register


def lookup(name: str) -> FunctionInfo:
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise InputError(f"unknown function {name}()") from None


def catalogue(group: str | None = None, grouped: bool = False) -> dict:
    """The ``/functions`` document (every name, aliases included)."""
    out: dict = {}
    for key in sorted(FUNCTIONS):
        info = FUNCTIONS[key]
        if group is not None and info.group != group:
            continue
        doc = info.to_json(key)
        if grouped:
            out.setdefault(info.group, {})[key] = doc
        else:
            out[key] = doc
    return out
