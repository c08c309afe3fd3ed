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
* ``include`` (file, ``arg`` entries with name/value, ``if``/``unless``) of
  another such file, whose nodes join the bringup: its arguments are the
  includer's, those the include sets, and its own declared ones (offered to the
  user like the includer's);
* substitutions ``$(var name)``, ``$(find-pkg-share package)``,
  ``$(env NAME [default])``, ``$(equals A B)``/``$(not-equals A B)`` and
  ``$(and A B)``/``$(or A B)``/``$(not A)``, nested as the frontend allows.

:meth:`Bringup.commands` turns the nodes into ``--ros-args`` command lines.
Every node is required (``on_exit: shutdown``): when one exits, the bringup
shuts down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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


Condition = tuple[str, str]                       # 'if' or 'unless', and its (substituted) boolean


@dataclass(frozen=True)
class Scope:
    """An ``include`` a node came through: its condition and the arguments it sets."""
    condition: Condition
    arguments: tuple[tuple[str, str], ...]       # name, value (substituted in the includer's)


@dataclass(frozen=True)
class NodeDescription:
    package: str
    executable: str
    name: str
    namespace: str = ''                           # values here may hold substitutions
    parameter_files: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()  # name, YAML text of the value
    remappings: tuple[tuple[str, str], ...] = ()
    condition: Condition = ('if', 'true')
    scopes: tuple[Scope, ...] = ()                # the includes around it, outermost first


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
        """``--ros-args`` for each node its conditions keep, with the arguments substituted."""
        top = self.resolve_arguments(given)
        out = []
        for node in self.nodes:
            values = _values_in_scopes(node, top)
            if values is None or not _holds(node.condition, values, f'node {node.name}'):
                continue
            args = ['--ros-args', '-r', f'__node:={node.name}']
            namespace = substitute(node.namespace, values).strip('/')
            if namespace:
                args += ['-r', f'__ns:=/{namespace}']
            for path in node.parameter_files:
                args += ['--params-file', substitute(path, values)]
            for key, value in node.parameters:
                args += ['-p', f'{key}:={parameter_text(substitute(value, values))}']
            for src, dst in node.remappings:
                args += ['-r', f'{substitute(src, values)}:={substitute(dst, values)}']
            out.append((node, args))
        return out


def _holds(condition: Condition, values: dict[str, str], where: str) -> bool:
    kind, text = condition
    return launch_boolean(substitute(text, values), f'{where}: {kind}: ') == (kind == 'if')


def _values_in_scopes(node: NodeDescription, values: dict[str, str]) -> dict[str, str] | None:
    """The argument values ``node`` sees inside its includes; None where an include's
    condition leaves it out."""
    for scope in node.scopes:
        if not _holds(scope.condition, values, f'include of node {node.name}'):
            return None
        values = {**values, **{name: substitute(value, values) for name, value in scope.arguments}}
    return values


def launch_directory() -> Path:
    return package_share(BRINGUP_PACKAGE) / 'launch'


def available_bringups(directory: Path | None = None) -> list[str]:
    directory = directory or launch_directory()
    return sorted(p.name.removesuffix('.launch.yaml') for p in directory.glob('*.launch.yaml'))


def parameter_text(text: str) -> str:
    """A substituted parameter value as ``-p name:=`` gives it to rcl, typed as ros2
    launch types it: YAML where that reads as a bool, number, string or list of one of
    them, else the text itself as a string. rcl reads ``-p`` values as YAML too, but
    refuses what is none of these (a bare ``name:=``, ``replay:``, ``a: b``): those are
    single-quoted."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    scalar = (bool, int, float, str)
    if isinstance(value, scalar) or (
            isinstance(value, list) and all(isinstance(item, scalar) for item in value)
            and len({type(item) for item in value}) <= 1):
        return text
    return "'" + text.replace("'", "''") + "'"


def _text(value) -> str:
    """A YAML scalar as the text ``-p name:=text`` gives rcl, so typing matches."""
    if isinstance(value, str):
        return value
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix('\n...')


def _condition(entry: dict, where: str) -> Condition:
    if 'if' in entry and 'unless' in entry:
        raise BringupError(f'{where}: an action takes if or unless, not both')
    return next(((k, _text(entry[k])) for k in ('if', 'unless') if k in entry), ('if', 'true'))


def _node(entry: dict, where: str) -> NodeDescription:
    known = {'pkg', 'exec', 'name', 'namespace', 'output', 'on_exit', 'param', 'remap', 'if', 'unless'}
    if unknown := set(entry) - known:
        raise BringupError(f'{where}: node attribute(s) {sorted(unknown)} are not supported by '
                           'robosandbox launch; run this file with ros2 launch')
    condition = _condition(entry, where)
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


def _read(path: Path, included: tuple[Path, ...] = ()):
    """The arguments, environment and nodes of the launch file at ``path``, its
    includes' nodes among them."""
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data.get('launch'), list):
        raise BringupError(f'{path}: not a launch file (a top-level "launch" list)')
    arguments, environment, nodes = [], [], []
    for i, item in enumerate(data['launch']):
        where = f'{path}: launch[{i}]'
        (kind, entry), = item.items()
        if kind == 'arg':
            arguments.append(Argument(str(entry['name']), _text(entry.get('default', '')),
                                      str(entry.get('description', ''))))
        elif kind == 'set_env' and not included:
            environment.append((str(entry['name']), _text(entry['value'])))
        elif kind == 'node':
            nodes.append(_node(entry, where))
        elif kind == 'include':
            sub_arguments, sub_nodes = _include(entry, where, (*included, path))
            names = {a.name for a in arguments}
            arguments.extend(a for a in sub_arguments if a.name not in names)
            nodes.extend(sub_nodes)
        else:
            raise BringupError(f'{where}: {kind!r} is not supported by robosandbox launch'
                               + (' in an included file' if kind == 'set_env' else '')
                               + '; run this file with ros2 launch')
    return arguments, environment, nodes


def _include(entry: dict, where: str, included: tuple[Path, ...]):
    """The arguments an ``include`` offers the includer (the included file's own, less
    those the include sets) and its nodes, each in the include's scope."""
    if unknown := set(entry) - {'file', 'arg', 'if', 'unless'}:
        raise BringupError(f'{where}: include attribute(s) {sorted(unknown)} are not supported by '
                           'robosandbox launch; run this file with ros2 launch')
    try:
        # The file is found before any argument has a value: no $(var) in its path.
        path = Path(substitute(str(entry['file']), {}))
        arguments = tuple((str(a['name']), _text(a['value'])) for a in entry.get('arg') or [])
    except (KeyError, TypeError) as e:
        raise BringupError(f'{where}: malformed include ({e})') from None
    if not path.is_file():
        raise BringupError(f'{where}: included file {path} does not exist')
    if path.resolve() in {p.resolve() for p in included}:
        raise BringupError(f'{where}: {path} includes itself')
    sub_arguments, _, sub_nodes = _read(path, included)
    scope = Scope(_condition(entry, where), arguments)
    set_here = {name for name, _ in arguments}
    return ([a for a in sub_arguments if a.name not in set_here],
            [replace(node, scopes=(scope, *node.scopes)) for node in sub_nodes])


def load_bringup(name: str, directory: Path | None = None) -> Bringup:
    directory = directory or launch_directory()
    path = directory / f'{name}.launch.yaml'
    if not path.is_file():
        raise BringupError(f'unknown bringup {name!r}; available: {available_bringups(directory)}')
    arguments, environment, nodes = _read(path)
    if not nodes:
        raise BringupError(f'{path}: no nodes')
    # The first comment block is the bringup's description, for --show-args.
    description = next((line.lstrip('# ').strip() for line in path.read_text().splitlines()
                        if line.startswith('#')), '')
    bringup = Bringup(name, description, tuple(arguments), tuple(environment), tuple(nodes), path)
    # Every $(var) must name a declared argument: check with each at its default.
    bringup.commands({})
    return bringup
