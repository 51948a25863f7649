"""Kill a real `barapi train` with SIGKILL at random moments and resume it until it finishes.
Shared by the test suite (a few kills) and bench/crash.py (many)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from barapi.store import Store


@dataclass
class Soak:
    kills: int
    resumes: int
    integrity_failures: int
    final: dict


def kill_and_resume(home: Path, train_args: list[str], name: str, *, seed: int, min_s: float, max_s: float, max_kills: int = 50) -> Soak:
    env = os.environ | {"BARAPI_HOME": str(home)}
    rng = random.Random(seed)
    train = [sys.executable, "-m", "barapi.cli", "train", *train_args, "--name", name, "--json"]
    command = train
    kills = resumes = integrity_failures = 0
    while True:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            process.wait(timeout=rng.uniform(min_s, max_s) if kills < max_kills else None)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            integrity_failures += not Store(home).integrity_ok()
            # Killed before it recorded the run (a slow start on a busy machine): nothing to
            # resume yet, so start it again.
            if Store(home).has_run(name):
                command = [sys.executable, "-m", "barapi.cli", "resume", name, "--json"]
                resumes += 1
            else:
                command = train
            continue
        out, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"run failed after {kills} kills: {err}")
        return Soak(kills, resumes, integrity_failures, json.loads(out.strip().splitlines()[-1]))
