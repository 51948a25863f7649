"""Every module of the package imports first, on its own: an import cycle that only an import
order hides (config's validator reads the registries) breaks a user's ``import``, not the suite's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import barapi

PACKAGE = Path(barapi.__file__).parent
# Its tables join one global metadata, which refuses a second definition: loaded once.
KEPT = ("barapi.store.schema",)


def test_each_module_imports_with_no_other_barapi_module_loaded() -> None:
    modules = sorted(".".join(("barapi", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
                     for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts)
    script = (f"import importlib, sys\nKEPT = {KEPT!r}\nfailed = []\nfor name in sys.argv[1:]:\n"
              "    for loaded in [m for m in sys.modules if m.startswith('barapi') and m not in KEPT]:\n        del sys.modules[loaded]\n"
              "    try:\n        importlib.import_module(name)\n    except Exception as error:\n        failed.append(f'{name}: {error!r}')\n"
              "print('\\n'.join(failed))")
    result = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, check=True)
    assert len(modules) > 30
    assert result.stdout.strip() == ""
