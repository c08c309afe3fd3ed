"""An operator's keys, one at a time, from a terminal (ROS-free).

Nodes started by a launcher run without a terminal of their own (their stdin
is not the operator's), so they open one by path: ``/dev/tty`` (the
controlling terminal, under ``ros2 launch``) or the launcher's, which
``robosandbox launch`` passes in ``ROBOSANDBOX_TERMINAL``. A terminal is put
in cbreak mode (one key at a time, no echo; Ctrl-C still interrupts) and
restored on close; a pipe or file is read as it is (tests feed keys so).
"""

from __future__ import annotations

import os
import select
import termios
import tty


class NoTerminal(OSError):
    """The keys cannot be read from where they were asked for."""


class KeyReader:

    def __init__(self, path: str, who: str):
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
        except OSError as e:
            raise NoTerminal(f'no terminal to read keys from ({path}: {e.strerror}); run {who} in a '
                             'terminal, or give keys:=<a tty>') from None
        self._saved = None
        if os.isatty(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        self.closed_by_peer = False

    def read(self, timeout: float) -> str | None:
        """The next key that is not white space, or None after ``timeout`` s (or once the
        terminal has gone away: ``closed_by_peer``)."""
        if self.closed_by_peer:
            return None
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        data = os.read(self.fd, 1)
        if not data:
            self.closed_by_peer = True
            return None
        key = data.decode(errors='replace')
        return None if key.isspace() else key

    def close(self) -> None:
        if self.fd < 0:
            return
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        os.close(self.fd)
        self.fd = -1
