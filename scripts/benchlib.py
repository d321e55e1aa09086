"""What the bench scripts share: the machine's description and the results file.

Every bench script appends one JSON object per measurement to docs/bench/results.jsonl:
{"bench", "date" (UTC, ISO 8601), "commit", "machine", "command", "results": {...}}. The file
is the history; docs/benchmarks.md holds the latest figures with the command that made them.
"""

import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MASTER_WAIT_S = 30
STOP_WAIT_S = 20
MASTER_LINE = re.compile(r"master: replica (\d+) \(127\.0\.0\.1:(\d+)\), elected ([0-9.]+) s")

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


class Cluster:
    """A fresh `keyspace cluster` of `binary` (3 replicas on 127.0.0.1, client ports from
    `base_port`) in a temporary directory, for a `with` block: on entry it waits for the master
    (`master_port`, `elected_s`); on exit it stops the cluster by pid and deletes the directory.
    The cluster's output goes to a file there, so it never blocks on a full pipe."""

    def __init__(self, binary, base_port, prefix):
        self.binary, self.base_port = binary, base_port
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.ports = [base_port, base_port + 1, base_port + 2]

    def __enter__(self):
        self.output = open(os.path.join(self.work, "cluster.out"), "w+")
        self.proc = subprocess.Popen(
            [self.binary, "cluster", "--dir", os.path.join(self.work, "c"),
             "--base-port", str(self.base_port)],
            stdout=self.output, stderr=subprocess.STDOUT,
        )
        try:
            self.master_port, self.elected_s = self._wait_master()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_master(self):
        deadline = time.time() + MASTER_WAIT_S
        while time.time() < deadline and self.proc.poll() is None:
            with open(self.output.name) as f:
                found = MASTER_LINE.search(f.read())
            if found:
                return int(found.group(2)), float(found.group(3))
            time.sleep(0.05)
        sys.exit("the cluster named no master within %d s (see %s)" % (MASTER_WAIT_S, self.output.name))

    def __exit__(self, *_):
        stop(self.proc)
        self.output.close()
        shutil.rmtree(self.work, ignore_errors=True)


def stop(proc, sig=signal.SIGINT):
    """Stops a process this script started, by pid, and waits for it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_port(port, timeout_s=10):
    """Returns once something listens on 127.0.0.1:`port`; exits after `timeout_s`."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")
