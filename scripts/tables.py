"""Every table in README.md and docs/ comes from bench/results/: this script writes them.

A generated table sits between two markers; the first names where it comes from:

    <!-- table: bench/results/portfolio.md, table 1, rows coarse-5/tshirt-shirt;project/digits, columns 0;1;5, link -->
    | … the table, written by this script … |
    <!-- /table -->

``table N`` is the N-th table of that results file (bench scripts write those files from their
.jsonl); ``rows`` keeps the rows whose first cell is one of those names (in that order),
``columns`` the columns by index, and ``link`` makes each row's first cell a link to its
section of the results file. ``python scripts/tables.py`` rewrites the tables; ``--check`` says
which differ from what the results give (exit 1), as the test suite does.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ``<!-- table: providers -->`` is the provider registry's table; every other source is a results file.
MARKER = re.compile(r"<!-- table: (?P<spec>[^>]*?) -->\n(?P<body>.*?)<!-- /table -->", re.S)


def tables_in(text: str) -> list[list[str]]:
    """The markdown tables of a file, each as its lines, in order."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def provider_table() -> str:
    """README's provider table, from the registry each adapter declares itself in."""
    from barapi.adapters import providers

    lines = ["| provider | what | key | where to get it | list price | typical flags |", "|---|---|---|---|---|---|"]
    for p in providers().values():
        key = f"`{p.key_variable}`, or `--key-file`" if p.key_variable else "none"
        price = f"${p.price_per_1k:.2f} / 1,000 images" if p.price_per_1k else "none: `--price-per-1k` or `--price-per-hour`" \
            if p.price_per_1k is None else "$0 (set `--price-per-1k` or `--price-per-hour`)"
        lines.append(f"| `{p.name}` | {p.summary} | {key} | {p.key_source} | {price} | `{p.typical_flags}` |")
    return "\n".join(lines) + "\n"


def generated(spec: str) -> str:
    if spec == "providers":
        return provider_table()
    parts = [part.strip() for part in spec.split(",")]
    source = ROOT / parts[0]
    options = dict(part.split(" ", 1) if " " in part else (part, "") for part in parts[1:])
    table = tables_in(source.read_text("utf-8"))[int(options["table"]) - 1]
    header, rule, rows = table[0], table[1], table[2:]
    if "rows" in options:
        by_name = {cells(row)[0]: row for row in rows}
        missing = [name for name in options["rows"].split(";") if name not in by_name]
        if missing:
            raise SystemExit(f"{parts[0]} table {options['table']} has no row {', '.join(missing)}")
        rows = [by_name[name] for name in options["rows"].split(";")]
    keep = [int(i) for i in options["columns"].split(";")] if "columns" in options else None
    out = []
    for index, line in enumerate([header, rule, *rows]):
        row = cells(line)
        if keep is not None:
            row = [row[i] for i in keep]
        if "link" in options and index >= 2:
            row[0] = f"[{row[0]}]({parts[0]}#{anchor(row[0])})"
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def rendered(path: Path) -> str:
    return MARKER.sub(lambda m: f"<!-- table: {m['spec']} -->\n{generated(m['spec'])}<!-- /table -->", path.read_text("utf-8"))


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def stale() -> list[Path]:
    """The documents whose tables differ from what bench/results/ gives."""
    return [path for path in documents() if rendered(path) != path.read_text("utf-8")]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        differ = stale()
        for path in differ:
            print(f"{path.relative_to(ROOT)}: tables differ from bench/results/ (run python scripts/tables.py)")
        return 1 if differ else 0
    for path in documents():
        text = rendered(path)
        if text != path.read_text("utf-8"):
            path.write_text(text, "utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
