"""The example a newcomer runs first, run as they would run it (against the session's server)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_quickstart_trains_predicts_exports_and_resumes_from_python(server_url: str, home: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True, timeout=600,
                            env=os.environ | {"BARAPI_BASE_URL": server_url, "BARAPI_HOME": str(home)})
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    accuracy = float(re.search(r"test accuracy ([\d.]+)%, 940 queries", out).group(1))
    assert accuracy > 50  # ten classes: chance is 10 %
    assert "the export predicts the same: True (0 queries paid: cached)" in out
    assert re.search(r"resumed to 5 steps: test accuracy [\d.]+%", out)
