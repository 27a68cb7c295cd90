"""The log has one reader: no module outside ``gateway/log/`` runs SQL on the log's tables.

Every string constant in the product source (adjacent literals and f-string parts joined, as
Python joins them) is searched for a statement naming a log table after FROM / JOIN / INTO /
UPDATE. Outside the log package, reading goes through ``gateway.log.reader``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "tui", "policies", "simulators")
LOG_TABLES = (
    "entries|bodies|texts|content|topics|subject_keys|checkpoints|keys|anchors|chains|atoms|meta"
)
SQL_ON_LOG = re.compile(
    rf"\b(?:SELECT|INSERT|UPDATE|DELETE)\b.*\b(?:FROM|JOIN|INTO|UPDATE)\s+(?:{LOG_TABLES})\b",
    re.IGNORECASE | re.DOTALL,
)


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    in_fstrings = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if id(node) in in_fstrings:
            continue  # searched as part of its f-string
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
            out.append((node.lineno, " ".join(str(p) for p in parts)))
    return out


def sql_on_log_tables(source: str) -> list[tuple[int, str]]:
    """(line, statement) of each string in ``source`` that is SQL on a log table."""
    return [(line, s) for line, s in _strings(ast.parse(source)) if SQL_ON_LOG.search(s)]


def test_the_detector_finds_sql_on_log_tables_and_nothing_else() -> None:
    found = sql_on_log_tables(
        'a = "SELECT id FROM chains WHERE name = ?"\n'
        'b = ("SELECT e.seq FROM entries e"\n     " JOIN bodies b ON b.id = e.body_id")\n'
        'c = f"DELETE FROM {t} WHERE x"\n'
        'd = f"INSERT INTO content VALUES ({marks})"\n'
        'e = "SELECT recipient FROM outbox"\n'
        'f = "select the keys from the menu"\n'
    )
    assert [line for line, _ in found] == [1, 2, 5]


def test_no_module_outside_the_log_package_queries_the_log() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("gateway", "log"):
                continue
            for line, sql in sql_on_log_tables(path.read_text(encoding="utf-8")):
                offenders.append(f"{rel}:{line}: {' '.join(sql.split())[:80]}")
    assert offenders == [], (
        "SQL on the log's tables outside gateway/log/ (use gateway.log.reader):\n"
        + "\n".join(offenders)
    )
