"""Run a package's console_scripts entry point as its installed script would.

``robosandbox run`` and ``robosandbox launch`` in a venv, where no script lies in an
ament prefix, start ``python -m robosandbox_cli.entry_point <name> <module:attr> [args]``.
Unlike a generated script, Ctrl-C while the node's modules still import (torch and
LeRobot take seconds) is a requested stop, as it is once its main runs: exit 0, no
traceback.
"""

import importlib
import sys


def main() -> int:
    name, target, *args = sys.argv[1:]
    sys.argv = [name, *args]
    module, _, attr = target.partition(':')
    try:
        entry = getattr(importlib.import_module(module), attr)
    except KeyboardInterrupt:
        return 0
    return entry()


if __name__ == '__main__':
    sys.exit(main())
