"""The flows sit below the composition root: from `omnistream` they take only settings, and start without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"


def _imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


def test_flows_import_nothing_of_omnistream_but_its_settings() -> None:
    reaching_up = {
        f"{path.name}: {module}"
        for path in sorted(FLOWS_DIR.glob("*.py"))
        for module in _imported_modules(path)
        if (module == "omnistream" or module.startswith("omnistream.")) and module != "omnistream.settings"
    }

    assert not reaching_up


def test_the_launcher_starts_flows_without_importing_the_flow_process_entry_point() -> None:
    # flows.run imports the launcher's recovery helpers; the reverse import would be a cycle.
    assert "flows.run" not in _imported_modules(FLOWS_DIR / "launcher.py")
    assert "flows.registry" in _imported_modules(FLOWS_DIR / "launcher.py")
    assert "flows.registry" in _imported_modules(FLOWS_DIR / "run.py")
