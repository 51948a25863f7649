"""Every module of the package imports first, on its own: an import cycle that only an import
order hides (config's validator reads the registries) breaks a user's ``import``, not the suite's."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import barapi

PACKAGE = Path(barapi.__file__).parent
# Its tables join one global metadata, which refuses a second definition: loaded once.
KEPT = ("barapi.store.schema",)


def test_each_module_imports_with_no_other_barapi_module_loaded() -> None:
    modules = sorted(".".join(("barapi", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
                     for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts)
    script = textwrap.dedent(f"""
        import importlib, sys
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if (m == "barapi" or m.startswith("barapi.")) and m not in {KEPT!r}]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as error:
                failed.append(f"{{name}}: {{error!r}}")
        print("\\n".join(failed))
    """)
    result = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, check=True)
    assert len(modules) > 30
    assert result.stdout.strip() == ""


ROOT = Path(__file__).resolve().parents[1]
# Where each folder's modules are importable from: the package's parts (pyproject's package-dir), and bench's scripts by name.
HOMES = {"barapi": "barapi", "adapters": "barapi.adapters", "cli": "barapi.cli", "mock": "barapi.mock", "bench": "", "scripts": ""}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, prefix in HOMES.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts or ".work" in path.parts:
                continue
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            found[".".join(p for p in (prefix, *parts) if p).removesuffix(".__init__")] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module of ours that ``path`` imports anywhere: at load time, in a function, or for
    type checking only."""
    import ast

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found |= {full} if full in known else {base} if base in known else set()
    return found - {name}


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = _modules()
    graph = {name: _imports(path, name, set(modules)) for name, path in modules.items()}

    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += graph[current]
        return seen

    circles = sorted(name for name in graph if name in reaches(name))
    assert len(graph) > 100 and circles == []


def test_a_benchmark_imports_the_harness_and_never_another_benchmark_nor_edits_sys_path() -> None:
    modules = _modules()
    scripts = {name: path for name, path in modules.items() if path.parent in (ROOT / "bench", ROOT / "scripts")}
    local = {name: {m for m in _imports(path, name, set(modules)) if not m.startswith("barapi")} for name, path in scripts.items()}
    assert {name: found for name, found in local.items() if not all(m.startswith("harness") for m in found)} == {}
    assert any(local.values())  # the scripts do share the harness
    assert [name for name, path in modules.items() if "sys.path" in path.read_text("utf-8") and path.parent.name != "tests"] == []
