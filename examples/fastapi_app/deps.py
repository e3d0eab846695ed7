"""Dependencies shared by the routers. The request transaction comes from the adapter."""

from duo_orm_fastapi import unit_of_work

__all__ = ["unit_of_work"]
