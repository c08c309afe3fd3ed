"""The ``robosandbox`` command.

    robosandbox launch <bringup> [name:=value ...]   # ros2 launch robosandbox_bringup <bringup>.launch.yaml
    robosandbox run <package> <executable> [args]    # like ros2 run

Other packages add subcommands through the ``robosandbox.commands`` entry
point group: a callable that takes an argparse subparsers object and
registers its parser with ``set_defaults(func=...)``.
"""

from __future__ import annotations

import argparse
from importlib import metadata
import os
import shlex
import sys

from robosandbox_cli import environment
from robosandbox_cli.bringup import BringupError, load_bringup
from robosandbox_cli.processes import ExecutableNotFound, our_terminal, resolve_executable, run_group


def launch_arguments(items: list[str]) -> dict[str, str]:
    """``name:=value`` strings as a dict; BringupError for anything else."""
    values = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not name:
            raise BringupError(f'launch arguments are name:=value, got {item!r}')
        values[name] = value
    return values


def cmd_launch(args: argparse.Namespace) -> int:
    bringup = load_bringup(args.bringup)
    if args.show_args:
        print(f'{bringup.name}: {bringup.description}')
        for a in bringup.arguments:
            print(f"  {a.name}:={a.default!r}  {a.description}")
        return 0
    given = launch_arguments(args.arguments)
    if args.print:
        commands, environment_variables = _processes(bringup, given)
        # One shell command per node, each run in its own terminal (or with & ... wait).
        exports = [f'export {name}={shlex.quote(value)}' for name, value in environment_variables.items()]
        print('\n'.join(exports))
        for name, argv in commands:
            print(f'# {name}\n{shlex.join(argv)}')
        return 0
    return run_bringup(bringup, given, duration=args.duration)


def _processes(bringup, given: dict[str, str]):
    os.environ.update(our_terminal())      # before substitutions: $(env ROBOSANDBOX_TERMINAL ...)
    commands = [(node.name, resolve_executable(node.package, node.executable) + ros_args)
                for node, ros_args in bringup.commands(given)]
    return commands, bringup.environment_variables(given)


def run_bringup(bringup, arguments: dict[str, str], duration: float | None = None) -> int:
    """Run ``bringup`` (a name or a loaded one) with launch ``arguments`` to its end:
    what ``robosandbox launch`` does, for other commands (``robosandbox eval``)."""
    if isinstance(bringup, str):
        bringup = load_bringup(bringup)
    commands, environment_variables = _processes(bringup, arguments)
    os.environ.update(environment_variables)
    return run_group(commands, duration=duration)


def cmd_run(args: argparse.Namespace) -> int:
    argv = resolve_executable(args.package, args.executable) + args.args
    return run_group([(args.executable, argv)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='robosandbox', description='robosandbox: SO-101 manipulation in ROS 2, sim to real.')
    sub = parser.add_subparsers(dest='command', required=True)

    launch = sub.add_parser('launch', help='run a bringup of robosandbox_bringup (as ros2 launch)')
    launch.add_argument('bringup', help='bringup name, e.g. sim')
    launch.add_argument('arguments', nargs='*', metavar='name:=value', help='launch arguments')
    launch.add_argument('--show-args', '-s', action='store_true', help='list the launch arguments')
    launch.add_argument('--print', '-p', action='store_true', help='print the node command lines only')
    launch.add_argument('--duration', type=float, default=None,
                        help='shut the bringup down after this many seconds')
    launch.set_defaults(func=cmd_launch)

    run = sub.add_parser('run', help='run an executable of a package (as ros2 run)')
    run.add_argument('package')
    run.add_argument('executable')
    run.add_argument('args', nargs=argparse.REMAINDER, help='arguments, e.g. --ros-args -p name:=value')
    run.set_defaults(func=cmd_run)

    for ep in metadata.entry_points(group='robosandbox.commands'):
        ep.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Works from .venv/bin/robosandbox without activating the venv.
    os.environ.update(environment.ros_environment())
    parser = build_parser()
    # Launch arguments may come after options too (`launch sim --print task:=x`): argparse
    # would stop the name:=value list at the first option.
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, 'arguments', None), list) and all(':=' in e for e in extra):
        args.arguments += extra
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    try:
        return args.func(args)
    except (BringupError, ExecutableNotFound) as e:
        print(f'robosandbox: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
