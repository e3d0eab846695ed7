"""Check that the floors environment really holds every floor pyproject.toml declares.

uv's lowest-direct resolution installs each direct dependency at its lowest allowed
version, unless another dependency needs more: a ``starlette>=0.36`` under a FastAPI that
requires ``starlette>=0.40`` would be installed at 0.40 and 0.36 never tested. Run after
the install (``tox -e floors``); exits 1 naming each floor that is not the installed version.

    python -m tests.check_floors fastapi starlette litestar postgresql
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement
from packaging.version import Version


def floor_of(requirement: Requirement) -> Version | None:
    floors = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    return max(floors) if floors else None


def untested_floors(extras: list[str]) -> list[str]:
    problems = []
    for line in requires("duo-orm") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": extra}) for extra in ["", *extras]):
            continue  # an extra this environment does not install
        floor = floor_of(requirement)
        try:
            installed = Version(version(requirement.name))
        except PackageNotFoundError:
            problems.append(f"{requirement.name}: not installed")
            continue
        if floor is not None and installed != floor:
            problems.append(f"{requirement.name}: floor {floor}, installed {installed}")
    return problems


def main() -> int:
    problems = untested_floors(sys.argv[1:])
    for problem in problems:
        print(f"untested floor: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
