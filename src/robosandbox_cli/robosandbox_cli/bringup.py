"""Bringups: the launch files of ``robosandbox_bringup``, run where ``ros2 launch`` is not.

A bringup is a launch file in the YAML frontend,
``share/robosandbox_bringup/launch/<name>.launch.yaml``: ``ros2 launch`` runs it
and ``<include>`` takes it as it is. Where the launch stack is not installed
(the venv), ``robosandbox launch`` reads the same file: :func:`load_bringup`
interprets the part of the frontend our bringups use and refuses anything else
by name, so the two can never drift apart:

* ``arg`` (name, default, description);
* ``set_env`` (name, value);
* ``node`` (pkg, exec, name, namespace, output, on_exit: shutdown, ``param``
  entries with name/value or ``from`` a file, ``remap`` entries with from/to,
  ``if``/``unless`` with a launch boolean: true/false/1/0);
* substitutions ``$(var name)``, ``$(find-pkg-share package)``,
  ``$(env NAME [default])``, ``$(equals A B)``/``$(not-equals A B)`` and
  ``$(and A B)``/``$(or A B)``/``$(not A)``, nested as the frontend allows.

:meth:`Bringup.commands` turns the nodes into ``--ros-args`` command lines.
Every node is required (``on_exit: shutdown``): when one exits, the bringup
shuts down.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

import yaml

from robosandbox_cli.environment import BRINGUP_PACKAGE


class BringupError(ValueError):
    """A bringup is unknown, malformed, or given an argument it does not declare."""


@dataclass(frozen=True)
class Argument:
    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NodeDescription:
    package: str
    executable: str
    name: str
    namespace: str = ''                           # values here may hold substitutions
    parameter_files: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()  # name, YAML text of the value
    remappings: tuple[tuple[str, str], ...] = ()
    condition: tuple[str, str] = ('if', 'true')   # 'if' or 'unless', and its (substituted) boolean


# --- substitutions ------------------------------------------------------------------

def _split(text: str, start: int) -> tuple[list[str], int]:
    """The words of the substitution opened at ``text[start]`` (``$(``) and the index
    after its closing parenthesis; nested ``$(...)`` stay inside their word."""
    words, word, depth, i = [], '', 0, start + 2
    while i < len(text):
        c = text[i]
        if text.startswith('$(', i):
            depth += 1
            word += '$('
            i += 2
            continue
        if c == ')' and depth == 0:
            if word:
                words.append(word)
            return words, i + 1
        if c == ')':
            depth -= 1
        if c in ' \t' and depth == 0:
            if word:
                words.append(word)
            word = ''
        else:
            word += c
        i += 1
    raise BringupError(f'unclosed substitution in {text!r}')


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with its substitutions performed (see the module docstring)."""
    out, i = '', 0
    while (start := text.find('$(', i)) >= 0:
        out += text[i:start]
        words, i = _split(text, start)
        words = [substitute(w.strip("'\""), values) for w in words]
        kind, args = (words[0], words[1:]) if words else ('', [])
        if kind == 'var' and len(args) == 1:
            if args[0] not in values:
                raise BringupError(f'$(var {args[0]}): no such launch argument')
            out += values[args[0]]
        elif kind == 'find-pkg-share' and len(args) == 1:
            out += str(package_share(args[0]))
        elif kind == 'env' and len(args) in (1, 2):
            value = os.environ.get(args[0], args[1] if len(args) == 2 else None)
            if value is None:
                raise BringupError(f'$(env {args[0]}): not set and no default')
            out += value
        elif kind in ('equals', 'not-equals') and len(args) == 2:
            out += str((_comparable(args[0]) == _comparable(args[1])) == (kind == 'equals')).lower()
        elif kind in ('and', 'or') and len(args) == 2:
            a, b = (launch_boolean(x, f'$({kind}): ') for x in args)
            out += str(a and b if kind == 'and' else a or b).lower()
        elif kind == 'not' and len(args) == 1:
            out += str(not launch_boolean(args[0], '$(not): ')).lower()
        else:
            raise BringupError(f'$({" ".join(words)}) is not supported by robosandbox launch '
                               '(var, find-pkg-share, env, equals, not-equals, and, or, not are); run this '
                               'file with ros2 launch')
    return out + text[i:]


def _comparable(text: str) -> str:
    # As launch's EqualsSubstitution: booleans in any case compare as booleans.
    return text.lower() if text.lower() in ('true', 'false') else text


def launch_boolean(text: str, where: str = '') -> bool:
    """A condition's value as launch's IfCondition reads it."""
    value = text.strip().lower()
    if value in ('true', '1'):
        return True
    if value in ('false', '0'):
        return False
    raise BringupError(f'{where}condition {text!r} is not a boolean (true, false, 1 or 0)')


def package_share(package: str) -> Path:
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        return Path(get_package_share_directory(package))
    except (PackageNotFoundError, KeyError, ValueError):
        raise BringupError(
            f'{package} is not in the ament index '
            f'(AMENT_PREFIX_PATH={os.environ.get("AMENT_PREFIX_PATH", "")!r}); '
            'source install/setup.bash or .venv/bin/activate') from None


# --- a bringup ----------------------------------------------------------------------

@dataclass(frozen=True)
class Bringup:
    name: str
    description: str
    arguments: tuple[Argument, ...]
    environment: tuple[tuple[str, str], ...]
    nodes: tuple[NodeDescription, ...]
    path: Path

    def resolve_arguments(self, given: dict[str, str]) -> dict[str, str]:
        declared = {a.name for a in self.arguments}
        unknown = set(given) - declared
        if unknown:
            raise BringupError(
                f'bringup {self.name!r} has no argument(s) {sorted(unknown)}; '
                f'it takes {sorted(declared)}')
        values: dict[str, str] = {}
        for a in self.arguments:      # a default may use substitutions, and earlier arguments
            values[a.name] = given[a.name] if a.name in given else substitute(a.default, values)
        return values

    def environment_variables(self, given: dict[str, str]) -> dict[str, str]:
        """What the bringup's ``set_env`` entries set."""
        values = self.resolve_arguments(given)
        return {name: substitute(value, values) for name, value in self.environment}

    def commands(self, given: dict[str, str]) -> list[tuple[NodeDescription, list[str]]]:
        """``--ros-args`` for each node its condition keeps, with the arguments substituted."""
        values = self.resolve_arguments(given)
        out = []
        for node in self.nodes:
            kind, condition = node.condition
            if launch_boolean(substitute(condition, values), f'node {node.name}: {kind}: ') != (kind == 'if'):
                continue
            args = ['--ros-args', '-r', f'__node:={node.name}']
            namespace = substitute(node.namespace, values).strip('/')
            if namespace:
                args += ['-r', f'__ns:=/{namespace}']
            for path in node.parameter_files:
                args += ['--params-file', substitute(path, values)]
            for key, value in node.parameters:
                # rcl reads -p values as YAML and refuses a bare 'name:=': '' is the empty string.
                args += ['-p', f"{key}:={substitute(value, values) or "''"}"]
            for src, dst in node.remappings:
                args += ['-r', f'{substitute(src, values)}:={substitute(dst, values)}']
            out.append((node, args))
        return out


def launch_directory() -> Path:
    return package_share(BRINGUP_PACKAGE) / 'launch'


def available_bringups(directory: Path | None = None) -> list[str]:
    directory = directory or launch_directory()
    return sorted(p.name.removesuffix('.launch.yaml') for p in directory.glob('*.launch.yaml'))


def _text(value) -> str:
    """A YAML scalar as the text ``-p name:=text`` gives rcl, so typing matches."""
    if isinstance(value, str):
        return value
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix('\n...')


def _node(entry: dict, where: str) -> NodeDescription:
    known = {'pkg', 'exec', 'name', 'namespace', 'output', 'on_exit', 'param', 'remap', 'if', 'unless'}
    if unknown := set(entry) - known:
        raise BringupError(f'{where}: node attribute(s) {sorted(unknown)} are not supported by '
                           'robosandbox launch; run this file with ros2 launch')
    if 'if' in entry and 'unless' in entry:
        raise BringupError(f'{where}: a node takes if or unless, not both')
    condition = next(((k, _text(entry[k])) for k in ('if', 'unless') if k in entry), ('if', 'true'))
    if entry.get('on_exit') != 'shutdown':
        raise BringupError(f'{where}: every node of a bringup is required (on_exit: shutdown)')
    files, parameters = [], []
    for param in entry.get('param') or []:
        if 'from' in param:
            files.append(str(param['from']))
        elif {'name', 'value'} <= set(param):
            parameters.append((str(param['name']), _text(param['value'])))
        else:
            raise BringupError(f'{where}: a param needs name and value, or from')
    try:
        return NodeDescription(
            package=entry['pkg'], executable=entry['exec'], name=entry['name'],
            namespace=str(entry.get('namespace', '')), parameter_files=tuple(files),
            parameters=tuple(parameters),
            remappings=tuple((str(r['from']), str(r['to'])) for r in entry.get('remap') or []),
            condition=condition)
    except (KeyError, TypeError) as e:
        raise BringupError(f'{where}: malformed node ({e})') from None


def load_bringup(name: str, directory: Path | None = None) -> Bringup:
    directory = directory or launch_directory()
    path = directory / f'{name}.launch.yaml'
    if not path.is_file():
        raise BringupError(f'unknown bringup {name!r}; available: {available_bringups(directory)}')
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data.get('launch'), list):
        raise BringupError(f'{path}: not a launch file (a top-level "launch" list)')
    arguments, environment, nodes = [], [], []
    for i, item in enumerate(data['launch']):
        where = f'{path}: launch[{i}]'
        (kind, entry), = item.items()
        if kind == 'arg':
            arguments.append(Argument(str(entry['name']), _text(entry.get('default', '')),
                                      str(entry.get('description', ''))))
        elif kind == 'set_env':
            environment.append((str(entry['name']), _text(entry['value'])))
        elif kind == 'node':
            nodes.append(_node(entry, where))
        else:
            raise BringupError(f'{where}: {kind!r} is not supported by robosandbox launch; '
                               'run this file with ros2 launch')
    if not nodes:
        raise BringupError(f'{path}: no nodes')
    # The first comment block is the bringup's description, for --show-args.
    description = next((line.lstrip('# ').strip() for line in text.splitlines()
                        if line.startswith('#')), '')
    bringup = Bringup(name, description, tuple(arguments), tuple(environment), tuple(nodes), path)
    # Every $(var) must name a declared argument: check with each at its default.
    bringup.commands({})
    return bringup
