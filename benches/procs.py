"""Child processes of the benchmark: started in their own session (Ctrl-C reaches only the
orchestrator, which stops them in order), killed by the kernel if the orchestrator dies
(PR_SET_PDEATHSIG), and all stopped on exit.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

_PR_SET_PDEATHSIG = 1
_children: list[subprocess.Popen] = []


class BenchError(RuntimeError):
    """The benchmark cannot go on: it says why, loudly."""


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the atexit hook still stops the children


def start(cmd: list[str], env: dict[str, str], log: Path, cwd: Optional[Path] = None,
          stdout_pipe: bool = False, die_with_parent: bool = True) -> subprocess.Popen:
    """Starts `cmd`; its output goes to `log` (stdout to a pipe if `stdout_pipe`).

    `die_with_parent` runs a hook in the child before the exec, which makes Python fork instead
    of spawning: about 3 ms more before `cmd` runs. A function under test goes without it, so
    that time is not counted in its cold start; it exits anyway when its Runtime API closes."""
    out = open(log, "ab")
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout_pipe else out, stderr=out,
        start_new_session=True, preexec_fn=_die_with_parent if die_with_parent else None,
    )
    out.close()
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen, sig: signal.Signals = signal.SIGTERM, grace_s: float = 5.0) -> None:
    """Sends `sig`, then SIGKILL after `grace_s`; reaps the process."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    if proc in _children:
        _children.remove(proc)


@atexit.register
def stop_all() -> None:
    for proc in list(_children):
        stop(proc, grace_s=2.0)


def peak_rss_kb(pid: int) -> Optional[int]:
    """VmHWM of a live process (its peak resident set), in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The first stdout line of `proc` (which must have been started with stdout_pipe)."""
    stdout = proc.stdout
    assert stdout is not None
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not result or not result[0]:
        raise BenchError(f"{command(proc)} printed nothing within {timeout_s:.0f} s")
    return result[0].decode().strip()


def command(proc: subprocess.Popen) -> str:
    """The program a process runs, for messages."""
    args = proc.args
    return str(args[0] if isinstance(args, list) else args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{command(proc)} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"nothing listens on port {port} after {timeout_s:.0f} s")


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def base_env() -> dict[str, str]:
    """What every child gets from us: a PATH and a locale, as in Lambda; nothing else inherited."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": ":UTC"}
