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
