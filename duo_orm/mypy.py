"""A mypy plugin: ``plugins = ["duo_orm.mypy"]``.

It does two things plain annotations cannot:

- ``class User(db.Model)``: mypy resolves a base class only through modules and
  classes, never through a variable, so the plugin declares ``db`` (a module-level
  ``db = Database(...)``) as a class whose metaclass is ``Database``. Every ``db.``
  call keeps the ``Database`` signature, and ``db.Model`` is the typed declarative base.
- one call form, two types: an ORM call returns its value in a ``def`` and an
  awaitable of it in an ``async def``. The plugin types it by the function the call
  is written in, so ``User.get(1)`` is ``User | None`` in sync code and
  ``Coroutine[Any, Any, User | None]`` in async code, where a forgotten ``await``
  is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from mypy.checker import TypeChecker
from mypy.nodes import (
    GDEF,
    MDEF,
    Block,
    ClassDef,
    FuncItem,
    LambdaExpr,
    NameExpr,
    SymbolTable,
    SymbolTableNode,
    TypeInfo,
)
from mypy.plugin import DynamicClassDefContext, MethodContext, Plugin
from mypy.semanal import SemanticAnalyzer
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    NoneType,
    ProperType,
    Type,
    TypeOfAny,
    TypeType,
    UnionType,
    get_proper_type,
)

DATABASE = "duo_orm.database.Database"
DECLARATIVE_MODEL = "duo_orm.database.DeclarativeModel"
MODEL = "duo_orm.model.Model"
QUERY = "duo_orm.query.Query"
PAGE = "duo_orm.query.Page"

# What each ORM call gives back once it has run, by the shape of its value.
_RESULTS = {
    "get": "optional",
    "first": "optional",
    "one_or_none": "optional",
    "get_one": "model",
    "one": "model",
    "create": "model",
    "save": "model",
    "update": "model",
    "refresh": "model",
    "all": "list",
    "page": "page",
    "count": "int",
    "update_bulk": "int",
    "delete_bulk": "int",
    "exists": "bool",
    "delete": "none",
    "create_bulk": "bulk",
    "iterate": "stream",
}
_DATABASE_CALLS = ("create_all", "drop_all", "connect", "disconnect")


class DuoOrmPlugin(Plugin):
    def get_dynamic_class_hook(
        self, fullname: str
    ) -> Callable[[DynamicClassDefContext], None] | None:
        symbol = self.lookup_fully_qualified(fullname)  # Database, or a subclass of it
        info = symbol.node if symbol is not None else None
        if isinstance(info, TypeInfo) and info.has_base(DATABASE):
            return partial(_declare_database, info)
        return None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        if fullname.endswith(" of Database"):  # through a declared db's metaclass
            fullname = f"{DATABASE}.{fullname.split()[0]}"
        owner, _, name = fullname.rpartition(".")
        if name in _RESULTS and self._defined_by(owner, name) in (MODEL, QUERY):
            return partial(_orm_call, name, self._page_class())
        if name in _DATABASE_CALLS and self._defined_by(owner, name) == DATABASE:
            return _database_call
        return None

    def _page_class(self) -> TypeInfo | None:
        symbol = self.lookup_fully_qualified(PAGE)
        return symbol.node if symbol is not None and isinstance(symbol.node, TypeInfo) else None

    def _defined_by(self, owner: str, name: str) -> str | None:
        """The class whose ``name`` a call on ``owner`` runs (a method a model overrides
        keeps its own annotation); for a declared ``db``, its metaclass's."""
        symbol = self.lookup_fully_qualified(owner)
        info = symbol.node if symbol is not None else None
        if not isinstance(info, TypeInfo):
            return None
        metaclass = info.metaclass_type
        if metaclass is not None and metaclass.type.has_base(DATABASE):
            info = metaclass.type
        defining = info.get_containing_type_info(name)
        return defining.fullname if defining is not None else None


def _orm_call(name: str, page: TypeInfo | None, ctx: MethodContext) -> Type:
    model = _model_of(ctx.type)
    if model is None:
        return ctx.default_return_type
    if name == "iterate":  # not awaited: a generator, or an async one
        item: Type = model
        if _flag(ctx, "batch"):
            item = ctx.api.named_generic_type("builtins.list", [model])
        kind = "typing.AsyncIterator" if _in_async_def(ctx) else "typing.Iterator"
        return ctx.api.named_generic_type(kind, [item])
    return _in_context(ctx, _result(ctx, name, model, page))


def _database_call(ctx: MethodContext) -> Type:
    return _in_context(ctx, NoneType())


def _model_of(receiver: Type) -> Instance | None:
    """The model of a call: ``User`` for ``User.get``, ``user.save``, ``Query[User].all``."""
    found: ProperType | None = get_proper_type(receiver)
    if isinstance(found, CallableType) and found.is_type_obj():
        found = get_proper_type(found.ret_type)
    elif isinstance(found, TypeType):
        found = found.item
    if isinstance(found, Instance) and found.type.fullname == QUERY:
        found = get_proper_type(found.args[0]) if found.args else None
    return found if isinstance(found, Instance) else None


def _result(ctx: MethodContext, name: str, model: Instance, page: TypeInfo | None) -> Type:
    api = ctx.api
    kind = _RESULTS[name]
    if kind == "optional":
        return UnionType([model, NoneType()])
    if kind == "model":
        return model
    if kind == "list":
        return api.named_generic_type("builtins.list", [model])
    if kind == "page":
        return Instance(page, [model]) if page is not None else ctx.default_return_type
    if kind == "int":
        return api.named_generic_type("builtins.int", [])
    if kind == "bool":
        return api.named_generic_type("builtins.bool", [])
    if kind == "bulk":
        rows = api.named_generic_type("builtins.list", [model])
        count = api.named_generic_type("builtins.int", [])
        flag = _flag(ctx, "return_models")
        return rows if flag else count if flag is False else UnionType([count, rows])
    return NoneType()


def _flag(ctx: MethodContext, name: str) -> bool | None:
    """The value given for a ``bool`` parameter that defaults to ``False``, by keyword or
    position (``None``: not a literal ``True``/``False``)."""
    if name not in ctx.callee_arg_names:
        return None
    given = ctx.args[ctx.callee_arg_names.index(name)]
    if not given:
        return False
    value = given[0]
    if isinstance(value, NameExpr) and value.fullname in ("builtins.True", "builtins.False"):
        return value.fullname == "builtins.True"
    return None


def _declare_database(database: TypeInfo, ctx: DynamicClassDefContext) -> None:
    """``db = Database(...)`` at module level: ``db`` becomes a class whose metaclass is
    ``Database`` (or the subclass called) and whose ``Model`` is ``DeclarativeModel``.

    ``db.transaction()`` and every other member still resolve on ``Database`` (through
    the metaclass), and ``db`` is accepted wherever a ``Database`` is.
    """
    api = ctx.api
    assert isinstance(api, SemanticAnalyzer)
    if api.is_func_scope() or api.type is not None:  # a local or a class attribute
        return
    declared = api.globals.get(ctx.name)
    if declared is not None and isinstance(declared.node, TypeInfo):  # a pass before did it
        return
    base = api.lookup_fully_qualified_or_none(DECLARATIVE_MODEL)
    if base is None or not isinstance(base.node, TypeInfo):
        if not api.final_iteration:
            api.defer()
        return
    defn = ClassDef(ctx.name, Block([]))
    defn.fullname = api.qualified_name(ctx.name)
    info = TypeInfo(SymbolTable(), defn, api.cur_mod_id)
    defn.info = info
    obj = api.named_type("builtins.object")
    info.bases = [obj]
    info.mro = [info, obj.type]
    info.metaclass_type = Instance(database, [])
    info.names["Model"] = SymbolTableNode(MDEF, base.node, plugin_generated=True)
    api.globals[ctx.name] = SymbolTableNode(GDEF, info, plugin_generated=True)


def _in_async_def(ctx: MethodContext) -> bool:
    """Whether the call is written in an ``async def`` (lambdas count as their enclosing def)."""
    checker = ctx.api
    assert isinstance(checker, TypeChecker)
    for item in reversed(checker.scope.stack):
        if isinstance(item, LambdaExpr):
            continue
        if isinstance(item, FuncItem):
            return item.is_coroutine
    return False


def _in_context(ctx: MethodContext, value: Type) -> Type:
    """``value`` in a ``def`` (or at module level), an awaitable of it in an ``async def``."""
    if not _in_async_def(ctx):
        return value
    anything = AnyType(TypeOfAny.special_form)
    return ctx.api.named_generic_type("typing.Coroutine", [anything, anything, value])


def plugin(version: str) -> type[Plugin]:
    return DuoOrmPlugin
