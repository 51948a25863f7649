"""README and docs/ for users: short, every table written from bench/results/ (never typed)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import tables  # scripts/tables.py: pytest's pythonpath


def test_every_table_in_readme_and_docs_is_what_the_results_give() -> None:
    for path in tables.documents():
        text = path.read_text("utf-8")
        generated = "".join(m.group(0) for m in tables.MARKER.finditer(text))
        typed = [line for line in text.splitlines() if line.startswith("|") and line not in generated]
        assert typed == [], f"{path.name}: a table typed by hand, not written by scripts/tables.py: {typed[:2]}"
    assert tables.stale() == []
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "tables.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_a_changed_result_makes_the_check_fail(tmp_path: Path, monkeypatch) -> None:
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    (results / "r.md").write_text("# r\n\n## a/b\n\n| cell | x |\n|---|---|\n| a/b | 1.0 |\n| c/d | 2.0 |\n")
    (tmp_path / "README.md").write_text("<!-- table: bench/results/r.md, table 1, rows c/d, link -->\n<!-- /table -->\n")
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    assert tables.main([]) == 0
    assert "| [c/d](bench/results/r.md#cd) | 2.0 |" in (tmp_path / "README.md").read_text() and tables.stale() == []
    (results / "r.md").write_text((results / "r.md").read_text().replace("2.0", "2.5"))
    assert tables.stale() == [tmp_path / "README.md"] and tables.main(["--check"]) == 1


def test_readme_is_short_and_links_what_it_moved_out() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert len(readme.splitlines()) <= 250
    for link in re.findall(r"\]\(((?:docs|examples|bench)/[^)#]+)", readme):
        assert (ROOT / link).exists(), link
    assert "```python" in readme and "make demo" in readme and "make test" in readme
