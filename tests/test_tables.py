"""Each table has one owner: no module outside ``gateway/log/`` runs SQL on the log's tables, and a
table of another room is named only by the module that owns it.

The log's tables are the ones ``gateway/log/migrations.py`` creates, less those ``ROOM_TABLES``
gives to another room; a table another module creates (the portal's store, the witness's state)
belongs to that module. A table added to the schema is the log's until it is given an owner here.

Every string constant in the product source (adjacent literals and f-string parts joined, as
Python joins them) that reads as SQL is searched for a table named after FROM / JOIN / INTO /
UPDATE / TABLE / ON, in a PRAGMA's argument or as a quoted name (``sqlite_master``, ``dbstat``).
Outside the log package, the log is read through ``gateway.log.reader`` and written through
``gateway.log.writer`` and the log package's other modules.

``SHARED`` names where a room's table is still reached from outside its owner, each with the
reason; it is checked against the tree, so an entry that no longer happens fails until removed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "tui", "policies", "simulators")
SCHEMA = "gateway/log/migrations.py"  # creates every table of the box's database
LOG_PACKAGE = "gateway/log/"

# Tables of the box's database that belong to another room than the log, and their owner.
ROOM_TABLES = {
    "outbox": "gateway/messages/outbox.py",
    "pseudonym_keys": "gateway/messages/pseudonyms.py",
    "consent_events": "gateway/rights/consent_events.py",
    "erasures": "gateway/rights/erasure_book.py",
    "erasure_notices": "gateway/rights/erasure_book.py",
}

# (module, table): a room's table reached from outside its owner, and why (for now).
SHARED = {
    ("gateway/log/leftovers.py", "erasures"): "blanks who asked, once the tree went elsewhere",
}

_CREATE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
# SQL: a string that holds an upper-case keyword (also a fragment such as " FROM outbox WHERE
# ..." joined to a statement at run time), or begins with a statement's verb in any case.
_KEYWORD = re.compile(
    r"\b(?:SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|JOIN|INTO|PRAGMA|CREATE|DROP)\b"
)
_STATEMENT = re.compile(
    r"\s*\(?\s*(?:select|insert|update|delete|replace|create|drop|alter|pragma|with)\b",
    re.IGNORECASE,
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


def _is_sql(text: str) -> bool:
    return bool(_KEYWORD.search(text) or _STATEMENT.match(text))


def tables_named(source: str, tables: Iterable[str]) -> list[tuple[int, str]]:
    """(line, table) for each of ``tables`` that SQL in ``source`` names."""
    names = "|".join(sorted(tables, key=len, reverse=True))
    naming = re.compile(
        rf"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|EXISTS|ON)\s+({names})\b"
        rf"|\bPRAGMA\s+\w+\(\s*['\"]?({names})\b|'({names})'",
        re.IGNORECASE,
    )
    found = []
    for line, text in _strings(ast.parse(source)):
        if _is_sql(text):
            for match in naming.finditer(text):
                found.append((line, next(g for g in match.groups() if g).lower()))
    return sorted(set(found))


def tables_created(source: str) -> set[str]:
    return {m.group(1) for _, s in _strings(ast.parse(source)) for m in _CREATE.finditer(s)}


def _modules(root: Path) -> list[tuple[str, str]]:
    return [
        (path.relative_to(root).as_posix(), path.read_text(encoding="utf-8"))
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    ]


def owners(root: Path) -> dict[str, str]:
    """Table -> who may name it: ``gateway/log/`` (the package) or one module."""
    modules = _modules(root)
    found = {t: LOG_PACKAGE for t in tables_created((root / SCHEMA).read_text(encoding="utf-8"))}
    for table, owner in ROOM_TABLES.items():
        if table in found:
            found[table] = owner
    for rel, source in modules:
        if rel != SCHEMA:
            for table in tables_created(source):
                found.setdefault(table, rel)
    return found


def trespasses(root: Path) -> list[tuple[str, int, str, str]]:
    """(module, line, table, owner) of each table named by a module that does not own it."""
    owner_of = owners(root)
    found = []
    for rel, source in _modules(root):
        if rel == SCHEMA:
            continue
        for line, table in tables_named(source, owner_of):
            owner = owner_of[table]
            if not (rel.startswith(owner) if owner.endswith("/") else rel == owner):
                found.append((rel, line, table, owner))
    return found


def test_the_detector_finds_sql_naming_a_table_and_nothing_else() -> None:
    found = tables_named(
        'a = "SELECT id FROM chains WHERE name = ?"\n'
        'b = ("SELECT e.seq FROM entries e"\n     " JOIN bodies b ON b.id = e.body_id")\n'
        'c = f"DELETE FROM {t} WHERE x"\n'
        'd = f"INSERT INTO content VALUES ({marks})"\n'
        'e = "SELECT recipient FROM outbox"\n'
        'f = "select the keys from the menu"\n'
        "g = \"SELECT sum(pgsize) FROM dbstat WHERE name IN ('topics')\"\n"
        'h = "PRAGMA table_info(trees)"\n'
        'i = "CREATE INDEX IF NOT EXISTS x ON names(doc)"\n'
        'j = " WHERE seq IN (SELECT seq FROM checkpoints)"\n'
        '"""A docstring that talks about content, on names and from keys."""\n'
        'k = "update entries set at = 0"\n',
        [
            *[
                "chains",
                "entries",
                "bodies",
                "content",
                "topics",
                "trees",
                "names",
                "keys",
                "outbox",
                "checkpoints",
            ]
        ],
    )
    assert found == [
        (1, "chains"),
        (2, "bodies"),
        (2, "entries"),
        (5, "content"),
        (6, "outbox"),
        (8, "topics"),
        (9, "trees"),
        (10, "names"),
        (11, "checkpoints"),
        (13, "entries"),
    ]


def _tree(tmp_path: Path, modules: dict[str, str]) -> Path:
    schema = (ROOT / SCHEMA).read_text(encoding="utf-8")
    for rel, source in {SCHEMA: schema, **modules}.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return tmp_path


def test_a_planted_query_is_reported_by_module_line_and_owner(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "gateway/log/fine.py": 'Q = "SELECT count(*) FROM entries"\n',
            "gateway/messages/outbox.py": 'Q = "DELETE FROM outbox WHERE id = ?"\n',
            "tui/peek.py": 'import sqlite3\n\nQ = ("SELECT seq"\n     " FROM entries")\n',
            "gateway/rights/nosy.py": '\n\nQ = "UPDATE outbox SET topic = ?"\n',
            "gateway/portal/store.py": 'S = "CREATE TABLE accounts (login TEXT)"\n',
            "gateway/other.py": 'Q = "SELECT * FROM accounts"\n',
        },
    )
    owner_of = owners(root)
    assert owner_of["entries"] == owner_of["witness_progress"] == "gateway/log/"
    assert owner_of["outbox"] == "gateway/messages/outbox.py"
    assert owner_of["accounts"] == "gateway/portal/store.py"
    assert trespasses(root) == [
        ("gateway/other.py", 1, "accounts", "gateway/portal/store.py"),
        ("gateway/rights/nosy.py", 3, "outbox", "gateway/messages/outbox.py"),
        ("tui/peek.py", 3, "entries", "gateway/log/"),
    ]


def test_the_log_s_tables_come_from_the_schema() -> None:
    owner_of = owners(ROOT)
    log_tables = {t for t, owner in owner_of.items() if owner == LOG_PACKAGE}
    assert {"entries", "content", "chains", "trees", "tree_hashes", "schema_version"} <= log_tables
    assert not log_tables & set(ROOM_TABLES)
    for table, owner in ROOM_TABLES.items():  # no stale owner: the table and module exist
        assert owner_of[table] == owner and (ROOT / owner).is_file(), table


def test_no_module_outside_the_log_package_queries_the_log() -> None:
    offenders = [
        f"{rel}:{line}: SQL on the log's table {table}"
        for rel, line, table, owner in trespasses(ROOT)
        if owner == LOG_PACKAGE
    ]
    assert offenders == [], (
        "SQL on the log's tables outside gateway/log/ (read through gateway.log.reader, write "
        "through the log package):\n" + "\n".join(offenders)
    )


def test_a_room_s_table_is_named_only_by_its_owner() -> None:
    found = [(rel, table, line, owner) for rel, line, table, owner in trespasses(ROOT)]
    unexpected = [
        f"{rel}:{line}: names {table}, which {owner} owns"
        for rel, table, line, owner in found
        if owner != LOG_PACKAGE and (rel, table) not in SHARED
    ]
    assert unexpected == [], "a room's table named outside its owner:\n" + "\n".join(unexpected)
    stale = set(SHARED) - {(rel, table) for rel, table, _, _ in found}
    assert not stale, f"SHARED lists what no longer happens; remove: {sorted(stale)}"


@pytest.mark.parametrize("owner", sorted(set(ROOM_TABLES.values())))
def test_each_owner_names_its_tables(owner: str) -> None:
    source = (ROOT / owner).read_text(encoding="utf-8")
    mine = {t for t, o in ROOM_TABLES.items() if o == owner}
    assert {table for _, table in tables_named(source, mine)} == mine
