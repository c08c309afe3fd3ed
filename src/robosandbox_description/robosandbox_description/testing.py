"""Robot descriptions changed in one place, for tests of what checks them."""

from __future__ import annotations

from pathlib import Path

import yaml

from robosandbox_description.robot import load_robot


def packaged_limits(robot: str = 'so101', **changes: dict) -> dict:
    """A packaged robot's ``limits`` as sidecar data, some joints' entries replaced."""
    limits = {j: {'lower': float(v.lower), 'upper': float(v.upper), 'velocity': float(v.velocity)}
              for j, v in load_robot(robot).limits.items()}
    return {**limits, **changes}


def sidecar_variant(directory: Path, robot: str = 'so101', **changes) -> Path:
    """A copy of a packaged robot's sidecar in ``directory`` with ``changes``
    (a value of None deletes the key); its path. Models stay where they are."""
    base = load_robot(robot)
    data = yaml.safe_load(base.sidecar.read_text())
    for key, path in (('urdf', base.urdf_path), ('mjcf', base.mjcf_path)):
        if path is not None:
            data[key] = {'file': str(path)}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = Path(directory) / 'my_robot.yaml'
    path.write_text(yaml.safe_dump(data))
    return path
