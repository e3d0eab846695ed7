"""Type-check the sample project with mypy (and duo-orm's plugin) and with pyright.

``python -m tests.typing.check`` (run by ``make typing``, part of ``make test``). Each
line of the sample says what the checkers must report there, and nothing else may be
reported anywhere:

- ``reveal_type(x)  # both: T`` or ``# mypy: T1; pyright: T2``: the type each shows
  (module paths dropped: ``list[User]``, not ``builtins.list[sample.models.User]``);
- ``# error: mypy[code] pyright[rule]``: each named checker reports that error there
  (a checker left out must report nothing on the line).

pyright is basedpyright, pyright's build on PyPI that bundles its own Node.js.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FunctionType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SAMPLE = HERE / "sample"
BIN = Path(sys.executable).parent
CHECKERS = ("mypy", "pyright")

# what one checker reports on one line: ("reveal", type) or ("error", code)
Finding = tuple[str, str]
Findings = dict[tuple[str, int], set[Finding]]

_QUALIFIED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")
_REVEAL = re.compile(r"#\s*(both|mypy|pyright):\s*(.+)$")
_ERROR = re.compile(r"#\s*error:\s*(.+)$")
_ERROR_PART = re.compile(r"(mypy|pyright)\[([\w-]+)\]")


def plain(type_text: str) -> str:
    """A revealed type without module paths, as both checkers can be compared."""
    return _QUALIFIED.sub("", type_text.strip())


def run_mypy() -> Findings:
    result = subprocess.run(
        [
            str(BIN / "mypy"),
            "--config-file",
            str(HERE / "mypy.ini"),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "typing-sample"),
            "--output",
            "json",
            str(SAMPLE.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    findings: Findings = defaultdict(set)
    for line in result.stdout.splitlines():
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        where = (Path(ROOT, item["file"]).name, item["line"])
        message: str = item["message"]
        if item["severity"] == "note":
            if message.startswith("Revealed type is "):
                findings[where].add(("reveal", plain(message.split('"')[1])))
        else:
            findings[where].add(("error", item["code"]))
    if result.returncode not in (0, 1) or (result.returncode == 1 and not findings):
        raise SystemExit(f"mypy failed to run:\n{result.stdout}\n{result.stderr}")
    return findings


def run_pyright() -> Findings:
    result = subprocess.run(
        [
            str(BIN / "basedpyright"),
            "--project",
            str(HERE / "pyrightconfig.json"),
            "--pythonpath",
            sys.executable,
            "--outputjson",
            str(SAMPLE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"pyright failed to run:\n{result.stdout}\n{result.stderr}") from None
    findings: Findings = defaultdict(set)
    for item in report["generalDiagnostics"]:
        where = (Path(item["file"]).name, item["range"]["start"]["line"] + 1)
        message: str = item["message"]
        if item["severity"] == "information" and message.startswith("Type of "):
            findings[where].add(("reveal", plain(message.rsplit(' is "', 1)[1][:-1])))
        elif item["severity"] == "error":
            findings[where].add(("error", item.get("rule", "error")))
    return findings


def expected(files: Iterable[Path]) -> dict[str, Findings]:
    """What the markers in the sample's comments ask of each checker."""
    wanted: dict[str, Findings] = {checker: defaultdict(set) for checker in CHECKERS}
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            where = (path.name, number)
            error = _ERROR.search(line)
            if error:
                for checker, code in _ERROR_PART.findall(error.group(1)):
                    wanted[checker][where].add(("error", code))
                continue
            reveal = _REVEAL.search(line)
            if reveal and "reveal_type(" in line:
                for part in line[line.index("#", line.index("reveal_type(")) + 1 :].split(";"):
                    name, _, type_text = part.partition(":")
                    name = name.strip()
                    for checker in CHECKERS if name == "both" else (name,):
                        wanted[checker][where].add(("reveal", plain(type_text)))
    return wanted


def compare(checker: str, wanted: Findings, found: Findings) -> list[str]:
    problems = []
    for where in sorted(set(wanted) | set(found)):
        missing = wanted.get(where, set()) - found.get(where, set())
        extra = found.get(where, set()) - wanted.get(where, set())
        file, line = where
        for kind, text in sorted(missing):
            problems.append(f"{file}:{line}: {checker} should report {kind} {text!r}, did not")
        for kind, text in sorted(extra):
            problems.append(f"{file}:{line}: {checker} reported unexpected {kind} {text!r}")
    return problems


def public_calls() -> dict[str, list[str]]:
    """The methods and properties of ``Database``, ``Model`` and ``Query`` users call."""
    from duo_orm import Database, Model, Query

    calls = {}
    for cls in (Database, Model, Query):
        calls[cls.__name__] = [
            name
            for name, value in vars(cls).items()
            if not name.startswith("_")
            and isinstance(value, (property, classmethod, staticmethod, FunctionType))
        ]
    return calls


def unsampled(files: Iterable[Path]) -> list[str]:
    """Public calls no line of the sample makes: the sample must keep up with the API."""
    text = "\n".join(path.read_text() for path in files)
    return [
        f"{owner}.{name} is not used in tests/typing/sample"
        for owner, names in public_calls().items()
        for name in names
        if not re.search(rf"\.{name}\b|\bdef {name}\(", text)
    ]


def main() -> int:
    files = sorted(SAMPLE.glob("*.py"))
    wanted = expected(files)
    with ThreadPoolExecutor(2) as pool:  # one process each, side by side
        mypy, pyright = pool.submit(run_mypy), pool.submit(run_pyright)
        problems = compare("mypy", wanted["mypy"], mypy.result())
        problems += compare("pyright", wanted["pyright"], pyright.result())
    problems += unsampled(files)
    checked = sum(len(findings) for findings in wanted["mypy"].values())
    checked += sum(len(findings) for findings in wanted["pyright"].values())
    if not checked:
        problems.append("no expectations found in tests/typing/sample: is the parser broken?")
    for problem in problems:
        print(problem)
    if problems:
        print(f"typing sample: {len(problems)} mismatch(es)")
        return 1
    print(f"typing sample: {checked} expectations met by mypy and pyright")
    return 0


if __name__ == "__main__":
    sys.exit(main())
