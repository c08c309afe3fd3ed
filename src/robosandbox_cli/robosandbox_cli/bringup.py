"""Bringup descriptions: one node graph, two ways to run it.

A bringup is a YAML file in ``share/robosandbox_bringup/bringups/``: its launch
arguments and its nodes (package, executable, name, parameter files, inline
parameters, remappings). Values may use the launch frontend's ``$(var name)``.

* :meth:`Bringup.launch_description` turns it into launch / launch_ros actions
  for ``ros2 launch`` on a ROS install;
* :meth:`Bringup.commands` turns it into ``--ros-args`` command lines that
  ``robosandbox launch`` runs as processes where the launch stack is missing.

Every node is required: when one exits, the bringup shuts down.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re

import yaml

from robosandbox_cli.environment import BRINGUP_PACKAGE, fastdds_profile, FASTDDS_PROFILE_VARIABLE

_VAR = re.compile(r'\$\(var ([A-Za-z_][A-Za-z0-9_]*)\)')


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
    namespace: str = ''
    parameter_files: tuple[str, ...] = ()        # relative to the bringup package share
    parameters: tuple[tuple[str, str], ...] = ()  # values may hold $(var ...)
    remappings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Bringup:
    name: str
    description: str
    arguments: tuple[Argument, ...]
    nodes: tuple[NodeDescription, ...]
    share: Path

    # --- argument values ------------------------------------------------------

    def resolve_arguments(self, given: dict[str, str]) -> dict[str, str]:
        declared = {a.name for a in self.arguments}
        unknown = set(given) - declared
        if unknown:
            raise BringupError(
                f'bringup {self.name!r} has no argument(s) {sorted(unknown)}; '
                f'it takes {sorted(declared)}')
        return {a.name: given.get(a.name, a.default) for a in self.arguments}

    @staticmethod
    def substitute(text: str, values: dict[str, str]) -> str:
        return _VAR.sub(lambda m: values[m.group(1)], text)

    # --- robosandbox launch: plain command lines ----------------------------------

    def commands(self, given: dict[str, str]) -> list[tuple[NodeDescription, list[str]]]:
        """``--ros-args`` for each node, with the arguments substituted."""
        values = self.resolve_arguments(given)
        out = []
        for node in self.nodes:
            args = ['--ros-args', '-r', f'__node:={node.name}']
            if node.namespace:
                args += ['-r', f'__ns:={self.substitute(node.namespace, values)}']
            for path in node.parameter_files:
                args += ['--params-file', str(self.share / self.substitute(path, values))]
            for key, value in node.parameters:
                # rcl reads -p values as YAML and refuses a bare 'name:=': '' is the empty string.
                args += ['-p', f"{key}:={self.substitute(value, values) or "''"}"]
            for src, dst in node.remappings:
                args += ['-r', f'{self.substitute(src, values)}:={self.substitute(dst, values)}']
            out.append((node, args))
        return out

    # --- ros2 launch: launch / launch_ros actions --------------------------------

    def launch_description(self):
        from launch import LaunchDescription
        from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable, Shutdown
        from launch.substitutions import LaunchConfiguration
        from launch_ros.actions import Node

        def subs(text: str):
            parts, last = [], 0
            for m in _VAR.finditer(text):
                if m.start() > last:
                    parts.append(text[last:m.start()])
                parts.append(LaunchConfiguration(m.group(1)))
                last = m.end()
            if last < len(text):
                parts.append(text[last:])
            return parts if len(parts) != 1 else parts[0]

        actions = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                   for a in self.arguments]
        profile = fastdds_profile(self.share, os.environ)
        if profile:
            actions.append(SetEnvironmentVariable(FASTDDS_PROFILE_VARIABLE, profile))
        for node in self.nodes:
            parameters = [str(self.share / p) for p in node.parameter_files]
            if node.parameters:
                parameters.append({key: subs(value) for key, value in node.parameters})
            actions.append(Node(
                package=node.package, executable=node.executable, name=node.name,
                namespace=subs(node.namespace) if node.namespace else None,
                parameters=parameters,
                remappings=[(subs(s), subs(d)) for s, d in node.remappings],
                output='screen', emulate_tty=True,
                on_exit=Shutdown(reason=f'{node.name} exited')))
        return LaunchDescription(actions)


def share_directory() -> Path:
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        return Path(get_package_share_directory(BRINGUP_PACKAGE))
    except (PackageNotFoundError, KeyError, ValueError):
        raise BringupError(
            f'{BRINGUP_PACKAGE} is not in the ament index '
            f'(AMENT_PREFIX_PATH={os.environ.get("AMENT_PREFIX_PATH", "")!r}); '
            'source install/setup.bash or .venv/bin/activate') from None


def available_bringups(share: Path | None = None) -> list[str]:
    share = share or share_directory()
    return sorted(p.stem for p in (share / 'bringups').glob('*.yaml'))


def _pairs(mapping, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(mapping, dict):
        raise BringupError(f'{where}: expected a mapping')
    out = []
    for key, value in mapping.items():
        # Keep YAML scalars as their YAML text so typing matches -p name:=value.
        text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
        if text.endswith('\n...'):
            text = text[:-4]
        out.append((str(key), text))
    return tuple(out)


def load_bringup(name: str, share: Path | None = None) -> Bringup:
    share = share or share_directory()
    path = share / 'bringups' / f'{name}.yaml'
    if not path.is_file():
        raise BringupError(f'unknown bringup {name!r}; available: {available_bringups(share)}')
    data = yaml.safe_load(path.read_text()) or {}
    arguments = tuple(
        Argument(n, str(a.get('default', '')), str(a.get('description', '')))
        for n, a in (data.get('arguments') or {}).items())
    declared = {a.name for a in arguments}
    nodes = []
    for i, entry in enumerate(data.get('nodes') or []):
        where = f'{path}: nodes[{i}]'
        try:
            files, inline = [], []
            for p in entry.get('parameters') or []:
                if isinstance(p, str):
                    files.append(p)
                else:
                    inline.extend(_pairs(p, where))
            node = NodeDescription(
                package=entry['package'], executable=entry['executable'], name=entry['name'],
                namespace=str(entry.get('namespace', '')),
                parameter_files=tuple(files), parameters=tuple(inline),
                remappings=_pairs(entry.get('remappings') or {}, where))
        except (KeyError, TypeError, AttributeError) as e:
            raise BringupError(f'{where}: malformed node entry ({e})') from None
        used = set(_VAR.findall(yaml.safe_dump(entry)))
        if used - declared:
            raise BringupError(f'{where}: uses undeclared argument(s) {sorted(used - declared)}')
        nodes.append(node)
    if not nodes:
        raise BringupError(f'{path}: no nodes')
    return Bringup(name=name, description=str(data.get('description', '')),
                   arguments=arguments, nodes=tuple(nodes), share=share)
