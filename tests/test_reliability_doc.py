"""RELIABILITY.md stays true: every test its tables name exists in tests/, and every test of
the reliability suite is named in a table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "RELIABILITY.md"


def _table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table body row (header and separator rows dropped)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("- :") or cells[0] == "fault or bad input":
            continue
        rows.append(cells)
    return rows


def _test_functions(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {
            n.name
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
        }
    return names


def test_every_named_test_exists_and_every_row_is_complete() -> None:
    rows = _table_rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) >= 30
    existing = _test_functions(sorted((ROOT / "tests").glob("test_*.py")))
    named: set[str] = set()
    for cells in rows:
        assert len(cells) == 3 and all(cells), cells  # fault | behaviour | test
        tests = re.findall(r"`(test_\w+)`", cells[2])
        assert tests, f"row without a test: {cells[0]}"
        named |= set(tests)
    assert sorted(named - existing) == []


def test_every_reliability_test_is_in_the_document() -> None:
    text = DOC.read_text(encoding="utf-8")
    suite = sorted((ROOT / "tests").glob("test_reliability_*.py"))
    suite = [p for p in suite if p.name != Path(__file__).name]
    missing = sorted(name for name in _test_functions(suite) if f"`{name}`" not in text)
    assert missing == []


def test_at_least_twenty_distinct_bad_inputs_are_listed() -> None:
    text = DOC.read_text(encoding="utf-8")
    bad_inputs = text.split("## Bad inputs", 1)[1]
    assert len(_table_rows(bad_inputs)) >= 20
