"""What every benchmark script shares: ``--set KEY=VALUE`` parsing and a results file that
rows are appended to as runs finish (so a restart skips finished runs), with the commit,
machine, date and arguments that produced them."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import time
from pathlib import Path


def parse_set(items: list[str]) -> dict:
    """``["alpha=100", "hidden=[64]", "arch=conv"]`` -> options, JSON values where they parse."""
    def value(text: str):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return {k: value(v) for k, v in (s.split("=", 1) for s in items)}


def grouped(rows: list[dict], *keys: str):
    """``(key, rows)`` per distinct value of ``keys`` (one key: the value, several: a tuple), in
    first-seen order: one line of a results table each."""
    def key(r: dict):
        return r[keys[0]] if len(keys) == 1 else tuple(r[k] for k in keys)
    for k in dict.fromkeys(key(r) for r in rows):
        yield k, [r for r in rows if key(r) == k]


class ResultsFile:
    def __init__(self, path: str, argv: dict):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = json.loads(self.path.read_text())["rows"] if self.path.exists() else []
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        self.meta = {"commit": commit, "machine": f"{platform.node()} {platform.processor()}", "argv": argv}

    def add(self, row: dict) -> None:
        """Append ``row``, print it, and rewrite the file: under a lock, to the rows on disk then, so
        that two processes writing one file keep each other's rows (session 44 lost one without)."""
        print(json.dumps(row), flush=True)
        meta = dict(self.meta, date=time.strftime("%Y-%m-%d"))
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self.rows = (json.loads(self.path.read_text())["rows"] if self.path.exists() else []) + [row]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"meta": meta, "rows": self.rows}, indent=1))
            os.replace(tmp, self.path)
