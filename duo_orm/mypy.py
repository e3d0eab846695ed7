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

from mypy.nodes import GDEF, MDEF, Block, ClassDef, SymbolTable, SymbolTableNode, TypeInfo
from mypy.plugin import DynamicClassDefContext, MethodContext, Plugin
from mypy.types import AnyType, Instance, Type, TypeOfAny

DATABASE = "duo_orm.database.Database"
DECLARATIVE_MODEL = "duo_orm.database.DeclarativeModel"


class DuoOrmPlugin(Plugin):
    def get_dynamic_class_hook(
        self, fullname: str
    ) -> Callable[[DynamicClassDefContext], None] | None:
        return _declare_database if fullname == DATABASE else None


def _declare_database(ctx: DynamicClassDefContext) -> None:
    api = ctx.api
    database = api.lookup_fully_qualified_or_none(DATABASE)
    base = api.lookup_fully_qualified_or_none(DECLARATIVE_MODEL)
    if database is None or base is None:
        api.defer()
        return
    assert isinstance(database.node, TypeInfo) and isinstance(base.node, TypeInfo)
    defn = ClassDef(ctx.name, Block([]))
    defn.fullname = api.qualified_name(ctx.name)
    info = TypeInfo(SymbolTable(), defn, api.cur_mod_id)
    defn.info = info
    obj = api.named_type("builtins.object")
    info.bases = [obj]
    info.mro = [info, obj.type]
    info.metaclass_type = Instance(database.node, [])
    info.names["Model"] = SymbolTableNode(MDEF, base.node, plugin_generated=True)
    api.globals[ctx.name] = SymbolTableNode(GDEF, info, plugin_generated=True)  # type: ignore[attr-defined]


def plugin(version: str) -> type[Plugin]:
    return DuoOrmPlugin
