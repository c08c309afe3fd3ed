"""Run ROS executables as supervised child processes.

This is what ``robosandbox run`` and ``robosandbox launch`` use where the ROS
launch stack is not installed. It does not interpret launch files: it starts
the command lines a :class:`~robosandbox_cli.bringup.Bringup` gives,
prefixes their output with the node name, and shuts them all down (SIGINT,
then SIGTERM, then SIGKILL) when one exits or the user presses Ctrl-C. A
launcher that is killed outright (SIGKILL, the OOM killer) cannot do that, so
each child is also asked by the kernel to stop (SIGTERM, a requested stop for
our nodes: the arm's torque goes off) when its launcher dies.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from importlib import metadata
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import threading
import time

from robosandbox_cli import environment

SIGINT_TIMEOUT = 5.0   # s to exit after SIGINT, as ros2 launch's sigterm_timeout
SIGTERM_TIMEOUT = 5.0  # s to exit after SIGTERM before SIGKILL


TERMINAL_VARIABLE = 'ROBOSANDBOX_TERMINAL'

_PR_SET_PDEATHSIG = 1      # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == 'linux' else None


def _stop_with(launcher: int):
    """Run in the child between fork and exec: SIGTERM when ``launcher`` dies."""
    def arrange() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != launcher:       # it died before the request was in place
            os._exit(1)
    return arrange if _LIBC is not None else None


class ExecutableNotFound(LookupError):
    pass


def ros_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment children get: ours (see ``environment``), output unbuffered."""
    env = environment.ros_environment(env)
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '0')
    for name, value in our_terminal().items():
        env.setdefault(name, value)
    return env


def our_terminal() -> dict[str, str]:
    """``ROBOSANDBOX_TERMINAL``: the terminal we run in, if any. Children run in sessions
    of their own (see ProcessGroup.start), without a controlling terminal; a node that
    reads keys (teleop_keyboard, whose default under ros2 launch is /dev/tty) opens this."""
    if sys.stdin is not None and sys.stdin.isatty():
        return {TERMINAL_VARIABLE: os.ttyname(sys.stdin.fileno())}
    return {}


def resolve_executable(package: str, executable: str, env: dict[str, str] | None = None) -> list[str]:
    """Command that runs ``executable`` of ``package``, as ``ros2 run`` finds it.

    First ``<prefix>/lib/<package>/<executable>`` in the ament prefixes (a colcon
    install space), then the package's console_scripts entry point (a pip
    install into the venv).
    """
    env = ros_environment(env)
    for prefix in env['AMENT_PREFIX_PATH'].split(os.pathsep):
        candidate = Path(prefix) / 'lib' / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    try:
        entry_points = metadata.distribution(package).entry_points
    except metadata.PackageNotFoundError:
        raise ExecutableNotFound(f'package {package!r} not found') from None
    for ep in entry_points:
        if ep.group == 'console_scripts' and ep.name == executable:
            return [sys.executable, '-m', 'robosandbox_cli.entry_point', executable, ep.value]
    names = sorted(ep.name for ep in entry_points if ep.group == 'console_scripts')
    raise ExecutableNotFound(f'no executable {executable!r} in package {package!r}; it has {names}')


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    reader: threading.Thread


class CapturedOutput:
    """A text sink for :class:`ProcessGroup` that keeps the children's output (for tests)."""

    def __init__(self):
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)

    def flush(self) -> None:
        pass

    def text(self) -> str:
        with self._lock:
            return ''.join(self._parts)


class ProcessGroup:
    """Children that live and die together."""

    def __init__(self, out=None):
        self.children: list[Child] = []
        self._out = out or sys.stdout
        self._print_lock = threading.Lock()

    def _pump(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b''):
            line = raw.decode(errors='replace').rstrip('\n')
            with self._print_lock:
                print(f'[{name}] {line}', file=self._out, flush=True)
        stream.close()

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        # Own session: Ctrl-C reaches us only, and we shut children down in order.
        # The kernel's parent-death signal is tied to the thread that forks: start()
        # runs in the launcher's main thread, which lives as long as the launcher.
        process = subprocess.Popen(
            argv, env=ros_environment(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_stop_with(os.getpid()))
        reader = threading.Thread(target=self._pump, args=(name, process.stdout), daemon=True)
        reader.start()
        child = Child(name, process, reader)
        self.children.append(child)
        self.say(f'started {name} (pid {process.pid})')
        return child

    def say(self, text: str) -> None:
        with self._print_lock:
            print(f'[robosandbox] {text}', file=self._out, flush=True)

    def wait_any(self, timeout: float | None = None) -> Child | None:
        """The first child to exit, or None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            for child in self.children:
                if child.process.poll() is not None:
                    return child
            time.sleep(0.05)
        return None

    def shutdown(self) -> None:
        """SIGINT every running child, then SIGTERM, then SIGKILL; reap them all."""
        for sig, timeout in ((signal.SIGINT, SIGINT_TIMEOUT), (signal.SIGTERM, SIGTERM_TIMEOUT),
                             (signal.SIGKILL, 5.0)):
            running = [c for c in self.children if c.process.poll() is None]
            if not running:
                break
            if sig != signal.SIGINT:
                self.say(f'sending {sig.name} to {", ".join(c.name for c in running)}')
            for child in running:
                try:
                    os.killpg(child.process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            for child in running:
                try:
                    child.process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for child in self.children:
            child.process.wait()
            child.reader.join(timeout=2.0)


def run_group(commands: list[tuple[str, list[str]]], duration: float | None = None) -> int:
    """Start ``(name, argv)`` children; return when one exits, on Ctrl-C, or after ``duration``.

    Exit status: that of the first child to exit, 0 after Ctrl-C or the duration.
    """
    group = ProcessGroup()
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    status = 0
    try:
        for name, argv in commands:
            group.start(name, argv)
        start = time.monotonic()
        while True:
            child = group.wait_any(timeout=0.1)
            if child is not None:
                status = child.process.returncode
                how = 'exited cleanly' if status == 0 else f'failed with exit status {status}'
                group.say(f'{child.name} {how}; shutting down')
                break
            if interrupted.is_set():
                group.say('interrupted; shutting down')
                break
            if duration is not None and time.monotonic() - start >= duration:
                group.say(f'ran for {duration:g} s; shutting down')
                break
    finally:
        group.shutdown()
        signal.signal(signal.SIGINT, previous)
    return status


def pid_alive(pid: int) -> bool:
    """Process ``pid`` is running (an exited one not yet reaped, a zombie, is not)."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class NodeProcess:
    """One node in a process of its own, its output kept (tests, benchmarks).

    ``params`` are ``name:=value`` strings; ``name`` renames the node.
    """

    def __init__(self, package: str, executable: str, *params: str, name: str = '',
                 env: dict[str, str] | None = None):
        self.output = CapturedOutput()
        self._group = ProcessGroup(out=self.output)
        argv = resolve_executable(package, executable) + ['--ros-args']
        if name:
            argv += ['-r', f'__node:={name}']
        for param in params:
            argv += ['-p', param]
        self.child = self._group.start(name or executable, argv, env=env)

    @property
    def returncode(self) -> int | None:
        return self.child.process.poll()

    def interrupt(self, timeout: float = 20.0) -> int:
        """Ctrl-C the node; its exit status. A node still running after ``timeout`` s
        is aborted and TimeoutError carries its output (see :meth:`abort`)."""
        self.child.process.send_signal(signal.SIGINT)
        try:
            return self.child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f'{self.child.name} still running {timeout:g} s after SIGINT:\n'
                               + self.abort()) from None

    def abort(self) -> str:
        """Kill a stuck node with SIGABRT; all its output. With PYTHONFAULTHANDLER
        set (the tests set it) that output ends with every thread's stack."""
        if self.child.process.poll() is None:
            self.child.process.send_signal(signal.SIGABRT)
            try:
                self.child.process.wait(SIGTERM_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.child.process.kill()
                self.child.process.wait()
        self.child.reader.join(timeout=2.0)
        return self.output.text()

    def close(self) -> None:
        self._group.shutdown()
