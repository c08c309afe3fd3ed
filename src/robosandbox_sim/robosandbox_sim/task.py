"""Tasks as data: objects, seeded randomisation, success condition, scene cameras.

A task file (``tasks/<name>.yaml``, documented in ``tasks/README.md``) is all
that defines a task; :func:`sample_layout` draws its randomised initial state
from a seed, so ``reset(task, seed)`` is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from robosandbox_description.robot import CameraMount, parse_camera

TASKS_DIR = Path(__file__).resolve().parent / 'tasks'


class TaskError(ValueError):
    """A task file is malformed or names something the scene does not have."""


@dataclass(frozen=True)
class Range:
    low: tuple[float, ...]
    high: tuple[float, ...]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    shape: str                         # box, sphere or cylinder
    size: tuple[float, ...]            # MuJoCo geom size (half extents for a box), m
    mass: float
    rgba: tuple[float, float, float, float]
    xy: Range
    yaw: Range

    @property
    def extents(self) -> tuple[float, float, float]:
        """Full extents x, y, z (m; a Marker's scale) from the MuJoCo size: half extents
        (box), a radius (sphere), a radius and a half length (cylinder)."""
        s = self.size
        return {'box': (2 * s[0], 2 * s[1], 2 * s[2]), 'sphere': (2 * s[0],) * 3,
                'cylinder': (2 * s[0], 2 * s[0], 2 * s[1])}[self.shape]


@dataclass(frozen=True)
class SuccessSpec:
    kind: str                          # lifted | at_goal | at_home
    object: str = ''
    height: float = 0.05               # lifted: m above the initial height
    tolerance: float = 0.03            # at_goal: m in xy; at_home: rad per joint


@dataclass(frozen=True)
class TaskSpec:
    name: str
    instruction: str                   # language instruction handed to policies
    time_limit: float                  # s of sim time an episode may take
    objects: tuple[ObjectSpec, ...]
    goal: Range | None                 # xy region of a goal marker, if the task has one
    success: SuccessSpec
    cameras: tuple[CameraMount, ...]
    arm_start_noise: float = 0.0       # rad, uniform around home for each arm joint


@dataclass(frozen=True)
class Layout:
    """The randomised part of a task's initial state."""

    object_poses: dict[str, tuple[np.ndarray, float]]   # name -> (xyz, yaw)
    goal_xy: np.ndarray | None
    arm_offsets: np.ndarray            # rad, added to the home pose of the arm joints


def _range(data, n: int, where: str) -> Range:
    if isinstance(data, (int, float)):
        return Range((float(data),) * 1, (float(data),) * 1)
    try:
        low = tuple(float(v) for v in np.atleast_1d(data['low']))
        high = tuple(float(v) for v in np.atleast_1d(data['high']))
    except (KeyError, TypeError, ValueError):
        raise TaskError(f'{where}: expected {{low: ..., high: ...}}, got {data!r}') from None
    if len(low) != n or len(high) != n:
        raise TaskError(f'{where}: low and high need {n} value(s) each')
    if any(lo > hi for lo, hi in zip(low, high)):
        raise TaskError(f'{where}: low is above high')
    return Range(low, high)


def available_tasks() -> list[str]:
    return sorted(p.stem for p in TASKS_DIR.glob('*.yaml'))


def load_task(name_or_path: str | Path) -> TaskSpec:
    path = Path(name_or_path)
    if path.suffix not in ('.yaml', '.yml'):
        path = TASKS_DIR / f'{name_or_path}.yaml'
        if not path.is_file():
            raise TaskError(f'unknown task {str(name_or_path)!r}; available: {available_tasks()}')
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise TaskError(f'cannot load task {path}: {e}') from None
    if not isinstance(data, dict):
        raise TaskError(f'{where}: expected a mapping at the top level')
    try:
        objects = []
        for name, obj in (data.get('objects') or {}).items():
            pose = obj.get('pose', {})
            objects.append(ObjectSpec(
                name=name,
                shape=str(obj.get('shape', 'box')),
                size=tuple(float(v) for v in obj['size']),
                mass=float(obj.get('mass', 0.05)),
                rgba=tuple(float(v) for v in obj.get('rgba', (0.8, 0.2, 0.2, 1.0))),
                xy=_range(pose['xy'], 2, f'{where}: objects.{name}.pose.xy'),
                yaw=_range(pose.get('yaw', 0.0), 1, f'{where}: objects.{name}.pose.yaw'),
            ))
        success = data['success']
        kind, params = next(iter(success.items()))
        success_spec = SuccessSpec(kind=kind, **(params or {}))
        if kind not in ('lifted', 'at_goal', 'at_home'):
            raise TaskError(f'{where}: unknown success condition {kind!r} (lifted, at_goal, at_home)')
        names = {o.name for o in objects}
        if kind in ('lifted', 'at_goal') and success_spec.object not in names:
            raise TaskError(f'{where}: success names object {success_spec.object!r}, '
                            f'but the task has {sorted(names)}')
        goal = _range(data['goal']['xy'], 2, f'{where}: goal.xy') if 'goal' in data else None
        if kind == 'at_goal' and goal is None:
            raise TaskError(f"{where}: success 'at_goal' needs a 'goal' region")
        cameras = tuple(parse_camera(n, c, where) for n, c in (data.get('cameras') or {}).items())
        return TaskSpec(
            name=str(data.get('name', path.stem)),
            instruction=str(data.get('instruction', '')),
            time_limit=float(data.get('time_limit', 20.0)),
            objects=tuple(objects),
            goal=goal,
            success=success_spec,
            cameras=cameras,
            arm_start_noise=float(data.get('arm_start_noise', 0.0)),
        )
    except TaskError:
        raise
    except (KeyError, TypeError, ValueError, StopIteration, AttributeError) as e:
        raise TaskError(f'{where}: malformed task file ({type(e).__name__}: {e})') from None


def sample_layout(task: TaskSpec, seed: int, n_arm_joints: int) -> Layout:
    """Draw object poses and the goal from ``seed`` (numpy PCG64): same seed, same layout."""
    rng = np.random.default_rng(seed)
    poses = {}
    for obj in task.objects:
        xy = obj.xy.sample(rng)
        yaw = float(obj.yaw.sample(rng)[0])
        z = obj.extents[2] / 2             # resting on the table
        poses[obj.name] = (np.array([xy[0], xy[1], z]), yaw)
    goal = task.goal.sample(rng) if task.goal is not None else None
    arm = rng.uniform(-task.arm_start_noise, task.arm_start_noise, n_arm_joints)
    return Layout(object_poses=poses, goal_xy=goal, arm_offsets=arm)
