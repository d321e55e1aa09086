"""What the bench scripts share: the machine's description and the results file.

Every bench script appends one JSON object per measurement to docs/bench/results.jsonl:
{"bench", "date" (UTC, ISO 8601), "commit", "machine", "command", "results": {...}}. The file
is the history; docs/benchmarks.md holds the latest figures with the command that made them.
"""

import datetime
import json
import os
import platform
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "bench", "results.jsonl")


def machine():
    """Cores, CPU model, memory and kernel of this machine, and its load when asked."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem_gib = 0
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(l.split()[1] for l in f if l.startswith("MemTotal")))
            mem_gib = round(kib / 1024 / 1024)
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def commit():
    """The checked-out commit, with `+dirty` when the tree has uncommitted changes."""
    def git(*args):
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def append_result(bench, command, results, **extra):
    """Appends one measurement to docs/bench/results.jsonl and returns it."""
    entry = {
        "bench": bench,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "command": command,
        "results": results,
        **extra,
    }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry
