"""No module in kms/ over MAX_LINES lines without a reason (issue #15.4): a longer module names its
reason on a line of its docstring starting with ``Size:``. Migrations are generated history."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def oversized(source: str, max_lines: int = MAX_LINES) -> bool:
    """Whether a module is over ``max_lines`` lines and its docstring gives no ``Size:`` reason."""
    if len(source.splitlines()) <= max_lines:
        return False
    doc = ast.get_docstring(ast.parse(source)) or ""
    return not any(line.strip().startswith("Size:") and line.strip()[len("Size:"):].strip()
                   for line in doc.splitlines())


def test_the_checker_flags_only_long_modules_without_a_reason():
    body = "x = 1\n" * 10
    assert not oversized('"""Short."""\n' + body, max_lines=20)
    assert oversized('"""Long."""\n' + body, max_lines=5)
    assert oversized(body, max_lines=5)  # no docstring at all
    assert oversized('"""Long.\n\nSize:\n"""\n' + body, max_lines=5)  # a reason must be given
    assert oversized('x = """Size: not the docstring"""\n' + body, max_lines=5)
    assert not oversized('"""Long.\n\nSize: one state machine, splitting it scatters it.\n"""\n' + body, max_lines=5)


def test_no_kms_module_over_the_limit_without_a_reason():
    found = [f"{path.relative_to(ROOT)}: {len(path.read_text().splitlines())} lines"
             for path in sorted((ROOT / "kms").rglob("*.py"))
             if "migrations" not in path.parts and oversized(path.read_text())]
    assert not found, (f"over {MAX_LINES} lines without a 'Size:' line in the docstring (split it along its "
                       "seams, or say why not):\n" + "\n".join(found))
