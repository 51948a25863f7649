"""The benchmarks' results files: one JSON object a line, appended as each measurement ends, so a
killed run resumes where it stopped. Every script reads its file through here."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def read_lines(path: Path) -> list[dict]:
    """Every line of a results file (none if it is not there yet)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def current(path: Path) -> list[dict]:
    """Every measurement but those a rerun superseded (kept in the file, with why)."""
    return [entry for entry in read_lines(path) if not entry.get("superseded")]
