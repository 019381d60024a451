"""Flags shared by the commands that load a run and compute with it."""

from __future__ import annotations

import argparse


def device_flags(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads`` (applied once by ``cli.main`` before the command runs)."""
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cpu)")
    threads_flag(p)


def threads_flag(p: argparse.ArgumentParser) -> None:
    """``--threads`` alone, for a command that computes on the CPU only (export)."""
    p.add_argument("--threads", dest="cpu_threads", type=int, default=None, metavar="N",
                   help="CPU threads to compute with (default: PyTorch's, one per core)")
