"""Safe, vectorised expressions over reconstructed objects (observables, cuts, efficiencies).

An expression such as ``(l[0] + l[1]).m`` or ``abs(l[0].eta - l[1].eta) < 2.5 and met.pt > 30``
is parsed with :mod:`ast`, checked against a whitelist and compiled into a tree of numpy
operations that act on a whole batch of events at once. Nothing is ever passed to ``eval``.
Anything outside the language (attribute names starting with ``_``, lambdas, comprehensions,
f-strings, ``:=``, slices, keyword arguments, strings, calls of unknown names, ...) raises an
:class:`~eftflow.errors.ExpressionError` naming the token and its column.

The language (see ``docs/analysis.md`` for the full reference):

* objects: collections ``e mu l a j`` (electrons, muons, leptons, photons, jets; pT-ordered) and
  the single objects ``met``, ``visible`` (sum of ``l a j``) and ``all`` (``visible + met``);
  ``l[0]`` is the leading lepton, ``l[-1]`` the softest; ``n_j`` = ``len(j)``;
* object attributes: ``pt eta phi m e charge px py pz p y theta et mt`` plus stored extras
  (``btag``, ...); ``o1 + o2`` / ``o1 - o2`` are four-vector sums/differences;
* collection attributes ``j.pt`` are jagged (one list per event): element-wise arithmetic and the
  reductions ``sum len min max any all mean``;
* numbers, ``pi``, ``inf``, ``True``, ``False``; ``+ - * / ** %``; comparisons (chained too);
  ``and or not`` (and ``& | ~`` on booleans); ``x if cond else y``; functions from
  :mod:`eftflow.analysis.functions` (``deltaR``, ``mt``, ``sqrt``, ``cos``, ``min``, ``max``, ...);
* names of observables defined earlier in the same analysis.

A value is *missing* for events where an object does not exist (``l[2]`` with two leptons) or the
arithmetic is undefined (division by zero, ``sqrt`` of a negative number): the caller replaces it
by the observable's default, or fails the cut.

Example
-------
>>> import numpy as np
>>> from eftflow.analysis.objects import Collection, EventObjects
>>> l = Collection.from_fields([2, 1], pt=[50.0, 40.0, 30.0], eta=[0.0, 0.0, 1.0],
...                            phi=[0.0, np.pi, 0.0], m=[0.0] * 3, charge=[-1.0, 1.0, 1.0])
>>> ev = EventObjects(2, {"l": l})
>>> Expression("(l[0] + l[1]).m").evaluate_array(ev, default=-1.0).tolist()
[89.44271909999159, -1.0]
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Iterable, Mapping

import numpy as np

from eftflow.analysis.functions import FUNCTIONS, REDUCTIONS, ObjectView
from eftflow.analysis.grammar import (
    ARITH,
    CMP,
    COLLECTION,
    CONSTANTS,
    DEFAULT_SCHEMA,
    FORBIDDEN,
    JAGGED,
    NUMBER,
    OBJECT,
    SUM_OBJECTS,
    VECTOR_FIELDS,
    Node,
    as_float,
)
from eftflow.analysis.objects import EventObjects
from eftflow.analysis.values import (
    EvalContext,
    Jag,
    Val,
    both_valid,
    cartesian_object,
)
from eftflow.errors import ExpressionError

__all__ = [
    "Expression",
    "DEFAULT_SCHEMA",
    "VECTOR_FIELDS",
    "CONSTANTS",
    "SUM_OBJECTS",
    "Val",
    "EvalContext",
]


# --------------------------------------------------------------------------------------------
# compiler
class Expression:
    """A compiled expression over reconstructed objects.

    Parameters
    ----------
    text
        The expression.
    schema
        Collections and their stored fields, ``{name: {"fields": [...], "single": bool}}``
        (default :data:`DEFAULT_SCHEMA`; an object store's ``schema`` attribute in practice).
    values
        Names of earlier observables the expression may use.
    source
        (file, field) quoted in error messages, e.g. ``("config.yaml", "analysis.cuts[1]")``.

    Raises
    ------
    ExpressionError
        Syntax errors, unknown names or attributes, and anything outside the language; the
        message names the token and its column.
    """

    def __init__(
        self,
        text: str,
        *,
        schema: Mapping[str, dict] | None = None,
        values: Iterable[str] = (),
        source: tuple[str | None, str | None] = (None, None),
    ):
        if not isinstance(text, str):
            raise ExpressionError(
                f"expected an expression string, got {text!r}", file=source[0], field=source[1]
            )
        self.text = text.strip()
        self.schema = dict(DEFAULT_SCHEMA if schema is None else schema)
        self.value_names = tuple(values)
        self.file, self.field = source
        self.used_values: set[str] = set()
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as err:
            col = f" at column {err.offset or len(self.text)}"
            raise ExpressionError(
                f"syntax error{col} ({err.msg}) in {self.text!r}", file=self.file, field=self.field
            ) from None
        node = self._compile(tree.body)
        if node.kind == OBJECT:
            raise self._error(
                tree.body, "is an object, not a number (take an attribute such as .pt)"
            )
        if node.kind in (COLLECTION, JAGGED):
            raise self._error(
                tree.body, "is a list per event, not a number (reduce it with len, sum, min or max)"
            )
        self._fn = node.fn

    # -- errors --------------------------------------------------------------------------------
    def _error(
        self, node: ast.AST, msg: str, *, token: str | None = None, col: int | None = None
    ) -> ExpressionError:
        seg = token if token is not None else ast.get_source_segment(self.text, node)
        c = col if col is not None else getattr(node, "col_offset", None)
        where = f" at column {c + 1}" if c is not None else ""
        return ExpressionError(
            f"{seg!r}{where} {msg} (in {self.text!r})", file=self.file, field=self.field
        )

    # -- nodes ---------------------------------------------------------------------------------
    def _compile(self, node: ast.AST) -> Node:
        for cls, what in FORBIDDEN.items():
            if isinstance(node, cls):
                raise self._error(
                    node, f"is not allowed: {what} is not part of the expression language"
                )
        method = getattr(self, f"_c_{type(node).__name__}", None)
        if method is None:
            raise self._error(
                node,
                f"is not allowed ({type(node).__name__} is not part of the expression language)",
            )
        return method(node)

    def _c_Constant(self, node):
        v = node.value
        if isinstance(v, bool) or (isinstance(v, (int, float)) and not isinstance(v, complex)):
            # numbers are floats (as the event data): integer arithmetic such as 9**9**9**9
            # would run unbounded
            val = Val(
                v if isinstance(v, bool) else as_float(v, lambda: self._error(node, "is too large"))
            )
            return Node(NUMBER, lambda ctx: val)
        raise self._error(node, "is not allowed: only numbers and True/False are constants")

    def _c_Name(self, node):
        name = node.id
        if name.startswith("_"):
            raise self._error(node, "is not allowed: names starting with '_' are forbidden")
        if name in self.value_names:
            self.used_values.add(name)
            return Node(NUMBER, lambda ctx: ctx.values[name])
        if name in self.schema:
            spec = self.schema[name]
            fields = frozenset([*VECTOR_FIELDS, *spec["fields"]])
            if spec.get("single"):
                return Node(OBJECT, lambda ctx: ctx.element(name, 0), fields)
            return Node(COLLECTION, lambda ctx: ctx.objects[name], fields, coll=name)
        if name in SUM_OBJECTS:
            parts = [p for p in SUM_OBJECTS[name] if p in self.schema]
            return Node(OBJECT, lambda ctx: ctx.sum_object(parts), frozenset(VECTOR_FIELDS))
        if (
            name.startswith("n_")
            and name[2:] in self.schema
            and not self.schema[name[2:]].get("single")
        ):
            coll = name[2:]
            return Node(NUMBER, lambda ctx: Val(ctx.counts(coll)))
        if name in CONSTANTS:
            val = Val(CONSTANTS[name])
            return Node(NUMBER, lambda ctx: val)
        if name in FUNCTIONS or name in REDUCTIONS:
            raise self._error(node, "is a function: call it with arguments in parentheses")
        known = sorted([*self.schema, *[s for s in SUM_OBJECTS if s not in self.schema]])
        obs = f"; earlier observables: {', '.join(self.value_names)}" if self.value_names else ""
        raise self._error(
            node, f"is an unknown name; objects: {', '.join(known)} (and n_<object>){obs}"
        )

    def _c_Attribute(self, node):
        attr = node.attr
        col = node.end_col_offset - len(attr) if node.end_col_offset is not None else None
        if attr.startswith("_"):
            raise self._error(
                node,
                "is not allowed: attributes starting with '_' are forbidden",
                token=attr,
                col=col,
            )
        base = self._compile(node.value)
        if base.kind not in (OBJECT, COLLECTION):
            raise self._error(
                node,
                f"is not allowed: only objects have attributes, not a {base.kind}",
                token=attr,
                col=col,
            )
        if attr not in base.fields:
            raise self._error(
                node,
                f"is an unknown attribute; available: {', '.join(sorted(base.fields))}",
                token=attr,
                col=col,
            )
        bfn = base.fn
        if base.kind == OBJECT:

            def obj_attr(ctx):
                o = bfn(ctx)
                return Val(o.get(attr), o.valid)

            return Node(NUMBER, obj_attr)

        coll = base.coll

        def coll_attr(ctx):
            key = ("jag", coll, attr)
            if key not in ctx.cache:
                ctx.cache[key] = Jag(ctx.objects[coll].offsets, ctx.collection_field(coll)(attr))
            return ctx.cache[key]

        return Node(JAGGED, coll_attr, coll=base.coll)

    def _c_Subscript(self, node):
        base = self._compile(node.value)
        if base.kind != COLLECTION:
            raise self._error(
                node.value,
                f"cannot be indexed: only collections (e, mu, l, a, j) can, not a {base.kind}",
            )
        idx = node.slice
        if isinstance(idx, ast.Slice):
            raise self._error(
                idx, "is not allowed: slices are not part of the language, index with one integer"
            )
        index = None
        if isinstance(idx, ast.Constant) and type(idx.value) is int:
            index = idx.value
        elif (
            isinstance(idx, ast.UnaryOp)
            and isinstance(idx.op, ast.USub)
            and isinstance(idx.operand, ast.Constant)
            and type(idx.operand.value) is int
        ):
            index = -idx.operand.value
        if index is None:
            raise self._error(
                idx, "is not allowed as an index: use an integer constant such as 0 or -1"
            )
        coll = base.coll
        return Node(OBJECT, lambda ctx: ctx.element(coll, index), base.fields)

    def _c_BinOp(self, node):
        left, right = self._compile(node.left), self._compile(node.right)
        if type(node.op) not in ARITH:
            raise self._error(
                node, f"uses the operator {type(node.op).__name__}, which is not allowed"
            )
        if left.kind == OBJECT or right.kind == OBJECT:
            if not (left.kind == right.kind == OBJECT and isinstance(node.op, (ast.Add, ast.Sub))):
                raise self._error(
                    node, "is not allowed: objects can only be added or subtracted (four-vectors)"
                )
            sign = 1.0 if isinstance(node.op, ast.Add) else -1.0
            lf, rf = left.fn, right.fn

            def vsum(ctx):
                a, b = lf(ctx), rf(ctx)
                op = np.add if sign > 0 else np.subtract
                return cartesian_object(
                    lambda f: op(a.get(f), b.get(f)), both_valid(a.valid, b.valid)
                )

            return Node(OBJECT, vsum, frozenset(VECTOR_FIELDS))
        op = ARITH[type(node.op)]
        return self._combine(node, op, [left, right])

    def _combine(self, node, op, nodes: list[Node]) -> Node:
        """Element-wise op over numbers and/or jagged values of one collection."""
        for n in nodes:
            if n.kind not in (NUMBER, JAGGED):
                raise self._error(
                    node,
                    f"is not allowed: a {n.kind} cannot be used in arithmetic (use an attribute)",
                )
        colls = {n.coll for n in nodes if n.kind == JAGGED}
        if len(colls) > 1:
            raise self._error(
                node, f"mixes lists of different collections ({', '.join(sorted(colls))})"
            )
        fns = [n.fn for n in nodes]
        if not colls:

            def num(ctx):
                vals = [f(ctx) for f in fns]
                valid = None
                for v in vals:
                    valid = both_valid(valid, v.valid)
                with np.errstate(all="ignore"):
                    return Val(op(*[v.data for v in vals]), valid)

            return Node(NUMBER, num)
        coll = colls.pop()

        def jag(ctx):
            vals = [f(ctx) for f in fns]
            offsets = next(v.offsets for v in vals if isinstance(v, Jag))
            counts = np.diff(offsets)
            datas, valid = [], None
            for v in vals:
                if isinstance(v, Jag):
                    datas.append(v.data)
                    valid = both_valid(valid, v.valid)
                else:
                    datas.append(np.repeat(v.data, counts) if np.ndim(v.data) else v.data)
                    valid = both_valid(
                        valid, None if v.valid is None else np.repeat(v.valid, counts)
                    )
            with np.errstate(all="ignore"):
                return Jag(offsets, op(*datas), valid)

        return Node(JAGGED, jag, coll=coll)

    def _c_UnaryOp(self, node):
        operand = self._compile(node.operand)
        ops = {
            ast.USub: operator.neg,
            ast.UAdd: operator.pos,
            ast.Not: np.logical_not,
            ast.Invert: np.logical_not,
        }
        return self._combine(node, ops[type(node.op)], [operand])

    def _c_Compare(self, node):
        nodes = [self._compile(node.left), *[self._compile(c) for c in node.comparators]]
        parts = []
        for i, op in enumerate(node.ops):
            if type(op) not in CMP:
                raise self._error(
                    node, f"uses the comparison {type(op).__name__}, which is not allowed"
                )
            parts.append(self._combine(node, CMP[type(op)], [nodes[i], nodes[i + 1]]))
        out = parts[0]
        for p in parts[1:]:
            out = self._combine(node, np.logical_and, [out, p])
        return out

    def _c_BoolOp(self, node):
        op = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        nodes = [self._compile(v) for v in node.values]
        out = nodes[0]
        for n in nodes[1:]:
            out = self._combine(node, op, [out, n])
        return out

    def _c_IfExp(self, node):
        nodes = [self._compile(node.test), self._compile(node.body), self._compile(node.orelse)]

        def where(c, a, b):
            return np.where(c, a, b)

        out = self._combine(node, where, nodes)
        # a missing value in the branch not taken does not make the result missing
        if out.kind == NUMBER:
            tf, bf, of = (n.fn for n in nodes)

            def ifexp(ctx):
                t, a, b = tf(ctx), bf(ctx), of(ctx)
                va = np.ones(ctx.n, bool) if a.valid is None else a.valid
                vb = np.ones(ctx.n, bool) if b.valid is None else b.valid
                valid = (
                    both_valid(t.valid, np.where(t.data, va, vb))
                    if (a.valid is not None or b.valid is not None)
                    else t.valid
                )
                return Val(np.where(t.data, a.data, b.data), valid)

            return Node(NUMBER, ifexp)
        return out

    def _c_Call(self, node):
        if not isinstance(node.func, ast.Name):
            raise self._error(
                node.func, "is not allowed: only functions called by name (sqrt(x), deltaR(a, b))"
            )
        name = node.func.id
        if node.keywords:
            kw = node.keywords[0]
            raise self._error(
                kw,
                "is not allowed: keyword arguments are not part of the language",
                token=kw.arg or "**",
                col=kw.col_offset,
            )
        if name not in FUNCTIONS and name not in REDUCTIONS:
            allowed = ", ".join(sorted([*FUNCTIONS, *REDUCTIONS]))
            raise self._error(node.func, f"is not an allowed function; allowed: {allowed}")
        args = [self._compile(a) for a in node.args]
        if name in ("min", "max") and len(args) >= 2:
            op = np.minimum if name == "min" else np.maximum

            def nary(*xs):
                out = xs[0]
                for x in xs[1:]:
                    out = op(out, x)
                return out

            return self._combine(node, nary, args)
        if name in REDUCTIONS:
            return self._reduction(node, name, args)
        f = FUNCTIONS[name]
        if not f.accepts(len(args)):
            raise self._error(node, f"calls {name} with {len(args)} arguments; it takes {f.n_args}")
        if f.kind == "elementwise":
            return self._combine(node, f.fn, args)
        if f.kind == "objects":
            for a, an in zip(args, node.args):
                if a.kind != OBJECT:
                    raise self._error(
                        an, f"must be an object such as l[0] or met for {name}(), not a {a.kind}"
                    )
            fns = [a.fn for a in args]

            def objfn(ctx):
                objs = [g(ctx) for g in fns]
                valid = None
                for o in objs:
                    valid = both_valid(valid, o.valid)
                with np.errstate(all="ignore"):
                    data = np.asarray(f.fn(*[ObjectView(o.get) for o in objs]), dtype=np.float64)
                return Val(data, valid)

            return Node(NUMBER, objfn)

        def eventfn(ctx):
            data = np.asarray(f.fn(ctx.objects), dtype=np.float64).reshape(ctx.n)
            return Val(data, np.isfinite(data))

        return Node(NUMBER, eventfn)

    def _reduction(self, node, name, args) -> Node:
        if len(args) != 1 or args[0].kind not in (JAGGED, COLLECTION):
            raise self._error(
                node, f"{name}() takes one list such as j.pt (or a collection for len)"
            )
        a = args[0]
        if a.kind == COLLECTION:
            if name != "len":
                raise self._error(node, f"{name}() needs a list of numbers such as {a.coll}.pt")
            fn = a.fn
            return Node(NUMBER, lambda ctx: Val(np.diff(fn(ctx).offsets)))
        fn = a.fn

        def reduce(ctx):
            jv = fn(ctx)
            counts = jv.counts()
            n = len(counts)
            evt = np.repeat(np.arange(n), counts)
            data = np.asarray(jv.data)
            if np.ndim(data) == 0:
                data = np.full(len(evt), data)
            valid = (
                None if jv.valid is None else np.bincount(evt, weights=~jv.valid, minlength=n) == 0
            )
            if name == "len":
                return Val(counts.astype(np.float64))
            if name == "sum":
                return Val(np.bincount(evt, weights=data.astype(np.float64), minlength=n), valid)
            if name in ("any", "all"):
                k = np.bincount(evt, weights=data.astype(bool), minlength=n)
                return Val(k > 0 if name == "any" else k == counts, valid)
            if name == "mean":
                s = np.bincount(evt, weights=data.astype(np.float64), minlength=n)
                with np.errstate(all="ignore"):
                    return Val(s / counts, both_valid(valid, counts > 0))
            out = np.zeros(n)
            nonempty = counts > 0
            if data.size:
                ufunc = np.minimum if name == "min" else np.maximum
                out[nonempty] = ufunc.reduceat(
                    data.astype(np.float64), jv.offsets[:-1][nonempty] - jv.offsets[0]
                )
            return Val(out, both_valid(valid, nonempty))

        return Node(NUMBER, reduce)

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, ctx: EvalContext) -> Val:
        """Evaluate on a context; ``data`` is broadcast to (n,), ``valid`` includes finiteness."""
        v = self._fn(ctx)
        data = np.asarray(v.data)
        if data.ndim == 0:
            data = np.full(ctx.n, data[()])
        valid = v.valid
        if data.dtype.kind == "f":
            fin = np.isfinite(data)
            if not fin.all():
                valid = both_valid(valid, fin)
        return Val(data, valid)

    def evaluate_array(
        self, objects: EventObjects, default: float = np.nan, values=None
    ) -> np.ndarray:
        """Evaluate on events and return float64 values, ``default`` where missing."""
        v = self.evaluate(EvalContext(objects, values))
        data = v.data.astype(np.float64)
        if v.valid is not None:
            data = np.where(v.valid, data, default)
        return data

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"
