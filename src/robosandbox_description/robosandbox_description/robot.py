"""Robot descriptions: a model (URDF and/or MJCF) plus a YAML sidecar.

The sidecar says what a model alone does not, and it is the authority every
backend follows: which joints are commanded and in what order, each joint's
position and velocity limits, the home pose, the gripper joint and where it is
open or closed, the end-effector frame and the robot's cameras. The simulator,
the hardware node, the servo emulator, the policy node and the export all read
it from here; none of them needs MuJoCo to learn a limit. See
``robots/README.md``.

Checks that need a model (names exist in it, limits inside its ranges) live
with the code that loads that model: :mod:`robosandbox_description.kinematics`
for the URDF, ``robosandbox_sim.scene`` for the MJCF.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROBOTS_DIR = Path(__file__).resolve().parent / 'robots'
SIDECAR = 'robot.yaml'


class RobotDescriptionError(ValueError):
    """A robot description cannot be used; the message says what to fix."""


class SidecarFormatError(RobotDescriptionError):
    """The YAML sidecar is malformed, misses a required key or contradicts itself."""


class ModelMismatchError(RobotDescriptionError):
    """The sidecar names something the model does not have, or goes beyond its range."""


@dataclass(frozen=True)
class JointLimit:
    """Position (rad, or m for a slide joint) and velocity (rad/s or m/s) limits."""

    lower: float
    upper: float
    velocity: float


@dataclass(frozen=True)
class CameraMount:
    """A camera fixed to a body of the robot (or of the world, for scene cameras).

    Follows MuJoCo's camera convention (looking along -z, y up); the optical
    frame of REP-103 (z forward, y down) is this frame turned by pi about x.
    """

    name: str
    body: str                      # '' or 'world' for a fixed camera
    pos: tuple[float, float, float]
    xyaxes: tuple[float, ...] | None = None
    quat: tuple[float, float, float, float] | None = None
    fovy: float = 60.0             # vertical field of view, degrees
    # The URDF link whose frame is ``body``'s: lets a backend without the MJCF (the
    # hardware node) place the camera in TF. The sim's tests check the two agree.
    link: str = ''

    def pose(self) -> np.ndarray:
        """4x4 pose of the camera (MuJoCo convention) in its body's frame."""
        pose = np.eye(4)
        pose[:3, 3] = self.pos
        if self.quat is not None:
            w, x, y, z = self.quat                    # MuJoCo's order
            n = math.sqrt(w * w + x * x + y * y + z * z)
            w, x, y, z = w / n, x / n, y / n, z / n
            pose[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
        elif self.xyaxes is not None:
            x_axis = np.asarray(self.xyaxes[:3], dtype=float)
            x_axis /= np.linalg.norm(x_axis)
            y_axis = np.asarray(self.xyaxes[3:], dtype=float)
            y_axis -= x_axis * (x_axis @ y_axis)      # as MuJoCo: y made orthogonal to x
            y_axis /= np.linalg.norm(y_axis)
            pose[:3, :3] = np.column_stack((x_axis, y_axis, np.cross(x_axis, y_axis)))
        return pose


@dataclass(frozen=True)
class EndEffector:
    """The tool frame: a URDF link, and the MJCF site that marks the same frame.

    A model without such a site gets one on ``body`` at ``pos`` (MJCF only).
    """

    link: str = ''                 # URDF link (forward kinematics without MuJoCo)
    site: str = 'end_effector'     # MJCF site
    body: str = ''                 # MJCF body to add the site to, when the model has none
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class RobotDescription:
    name: str
    arm_joints: tuple[str, ...]
    gripper_joint: str
    gripper_open: float
    gripper_closed: float
    limits: dict[str, JointLimit]
    home: dict[str, float]
    end_effector: EndEffector
    urdf_path: Path | None = None
    mjcf_path: Path | None = None
    cameras: tuple[CameraMount, ...] = ()
    actuator_kp: float = 50.0      # for models (URDF) that bring no actuators
    sidecar: Path | None = field(default=None, compare=False)

    @property
    def joints(self) -> tuple[str, ...]:
        """All commanded joints: the arm joints, then the gripper."""
        return self.arm_joints + (self.gripper_joint,)

    @property
    def lower(self) -> np.ndarray:
        """Lower position limits of :attr:`joints`."""
        return np.array([self.limits[j].lower for j in self.joints])

    @property
    def upper(self) -> np.ndarray:
        return np.array([self.limits[j].upper for j in self.joints])

    @property
    def max_velocity(self) -> np.ndarray:
        return np.array([self.limits[j].velocity for j in self.joints])

    @property
    def home_positions(self) -> np.ndarray:
        return np.array([self.home[j] for j in self.joints])

    @property
    def gripper_range(self) -> tuple[float, float]:
        """The gripper joint's position limits."""
        limit = self.limits[self.gripper_joint]
        return limit.lower, limit.upper

    @property
    def where(self) -> str:
        """What error messages name: the sidecar file, else the robot."""
        return str(self.sidecar or self.name)


def available_robots() -> list[str]:
    return sorted(p.parent.name for p in ROBOTS_DIR.glob(f'*/{SIDECAR}'))


def _require(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise SidecarFormatError(f'{where}: missing required key {key!r}')
    return data[key]


def _mapping(value, what: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise SidecarFormatError(f'{where}: {what!r} must be a mapping')
    return value


def _floats(value, n: int | None, where: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise SidecarFormatError(f'{where}: expected a list of numbers, got {value!r}') from None
    if n is not None and len(out) != n:
        raise SidecarFormatError(f'{where}: expected {n} numbers, got {len(out)}')
    return out


def parse_camera(name: str, data: dict, where: str) -> CameraMount:
    if not isinstance(data, dict):
        raise SidecarFormatError(f'{where}: camera {name!r} must be a mapping')
    return CameraMount(
        name=name,
        body=str(data.get('body', 'world')),
        pos=_floats(_require(data, 'pos', f'{where}: camera {name!r}'), 3, f'{where}: {name}.pos'),
        xyaxes=_floats(data['xyaxes'], 6, f'{where}: {name}.xyaxes') if 'xyaxes' in data else None,
        quat=_floats(data['quat'], 4, f'{where}: {name}.quat') if 'quat' in data else None,
        fovy=float(data.get('fovy', 60.0)),
        link=str(data.get('link', '')),
    )


def _resolve_model(model: Any, base_dir: Path, where: str) -> Path:
    """``{file: path}`` (absolute, ~, or relative to the sidecar) or
    ``{package: <Python package>, path: <file inside it>}``."""
    if not isinstance(model, dict):
        raise SidecarFormatError(f"{where}: a model must be a mapping with 'file' or 'package' and 'path'")
    if 'file' in model:
        path = Path(str(model['file'])).expanduser()
        path = path if path.is_absolute() else base_dir / path
    elif 'package' in model:
        spec = importlib.util.find_spec(str(model['package']))
        if spec is None or not spec.submodule_search_locations:
            raise RobotDescriptionError(
                f"{where}: Python package {model['package']!r} that ships the model is not installed")
        path = Path(spec.submodule_search_locations[0]) / str(_require(model, 'path', where))
    else:
        raise SidecarFormatError(f"{where}: a model needs 'file' or 'package' and 'path'")
    return path


def _end_effector(value, where: str) -> EndEffector:
    value = _mapping(value, 'end_effector', where)
    unknown = set(value) - {'link', 'site', 'body', 'pos'}
    if unknown:
        raise SidecarFormatError(f'{where}: end_effector has unknown key(s) {sorted(unknown)}')
    if not (value.get('link') or value.get('site') or value.get('body')):
        raise SidecarFormatError(f"{where}: end_effector needs a 'link' (URDF), a 'site' (MJCF) "
                                 f"or a 'body' and 'pos' to place a site on")
    return EndEffector(link=str(value.get('link', '')), site=str(value.get('site', 'end_effector')),
                       body=str(value.get('body', '')),
                       pos=_floats(value.get('pos', (0, 0, 0)), 3, f'{where}: end_effector.pos'))


def _limits(value, joints: tuple[str, ...], where: str) -> dict[str, JointLimit]:
    value = _mapping(value, 'limits', where)
    missing = [j for j in joints if j not in value]
    if missing:
        raise SidecarFormatError(f'{where}: limits misses joint(s) {missing}')
    extra = sorted(set(value) - set(joints))
    if extra:
        raise SidecarFormatError(f'{where}: limits names {extra}, which are not arm or gripper joints')
    out = {}
    for joint in joints:
        entry = _mapping(value[joint], f'limits.{joint}', where)
        try:
            limit = JointLimit(float(_require(entry, 'lower', f'{where}: limits.{joint}')),
                               float(_require(entry, 'upper', f'{where}: limits.{joint}')),
                               float(_require(entry, 'velocity', f'{where}: limits.{joint}')))
        except (TypeError, ValueError):
            raise SidecarFormatError(f'{where}: limits.{joint} must be numbers, got {entry}') from None
        if not np.isfinite([limit.lower, limit.upper, limit.velocity]).all():
            raise SidecarFormatError(f'{where}: limits.{joint} must be finite, got {entry}')
        if not limit.lower < limit.upper:
            raise SidecarFormatError(f'{where}: limits.{joint}: lower {limit.lower} is not below upper {limit.upper}')
        if limit.velocity <= 0:
            raise SidecarFormatError(f'{where}: limits.{joint}: velocity must be positive, got {limit.velocity}')
        out[joint] = limit
    return out


def _sidecar_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in ('.yaml', '.yml'):
        return path
    path = ROBOTS_DIR / str(name_or_path) / SIDECAR
    if not path.is_file():
        raise RobotDescriptionError(
            f'unknown robot {str(name_or_path)!r}; packaged robots: {available_robots()}')
    return path


def load_robot(name_or_path: str | Path, mjcf_file: str | Path | None = None) -> RobotDescription:
    """Load a robot by packaged name (``so101``) or sidecar path.

    ``mjcf_file`` overrides the MJCF model the sidecar points to, for models
    that are not packaged (e.g. a local copy of MuJoCo Menagerie).
    """
    path = _sidecar_path(name_or_path)
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RobotDescriptionError(f'cannot read robot sidecar {path}: {e}') from None
    except yaml.YAMLError as e:
        raise SidecarFormatError(f'{where}: invalid YAML: {e}') from None
    if not isinstance(data, dict):
        raise SidecarFormatError(f'{where}: expected a mapping at the top level')
    if 'model' in data:
        raise SidecarFormatError(f"{where}: 'model' was split into 'urdf' and 'mjcf' (see robots/README.md)")
    if 'urdf' not in data and 'mjcf' not in data and not mjcf_file:
        raise SidecarFormatError(f"{where}: needs a model: 'urdf', 'mjcf' or both")

    gripper = _mapping(_require(data, 'gripper', where), 'gripper', where)
    home = _mapping(_require(data, 'home', where), 'home', where)
    cameras = data.get('cameras') or {}
    try:
        arm_joints = tuple(str(j) for j in _require(data, 'arm_joints', where))
        gripper_joint = str(_require(gripper, 'joint', f'{where}: gripper'))
        joints = arm_joints + (gripper_joint,)
        if len(set(joints)) != len(joints):
            raise SidecarFormatError(f'{where}: a joint is named twice in {list(joints)}')
        mjcf = {'file': str(mjcf_file)} if mjcf_file else data.get('mjcf')
        description = RobotDescription(
            name=str(data.get('name', path.parent.name)),
            arm_joints=arm_joints,
            gripper_joint=gripper_joint,
            gripper_open=float(_require(gripper, 'open', f'{where}: gripper')),
            gripper_closed=float(_require(gripper, 'closed', f'{where}: gripper')),
            limits=_limits(_require(data, 'limits', where), joints, where),
            home={str(k): float(v) for k, v in home.items()},
            end_effector=_end_effector(_require(data, 'end_effector', where), where),
            urdf_path=_resolve_model(data['urdf'], path.parent, where) if 'urdf' in data else None,
            mjcf_path=_resolve_model(mjcf, path.parent, where) if mjcf else None,
            cameras=tuple(parse_camera(n, c, where) for n, c in _mapping(cameras, 'cameras', where).items()),
            actuator_kp=float(data.get('actuator_kp', 50.0)),
            sidecar=path,
        )
    except RobotDescriptionError:
        raise
    except (TypeError, ValueError) as e:
        raise SidecarFormatError(f'{where}: {e}') from None
    _check_positions(description)
    return description


def _check_positions(robot: RobotDescription) -> None:
    """Home and gripper positions name commanded joints and lie inside the limits."""
    where = robot.where
    missing = set(robot.joints) - set(robot.home)
    if missing:
        raise SidecarFormatError(f'{where}: home pose misses joint(s) {sorted(missing)}')
    named = list(robot.home.items()) + [
        (robot.gripper_joint, robot.gripper_open), (robot.gripper_joint, robot.gripper_closed)]
    for joint, value in named:
        if joint not in robot.limits:
            raise SidecarFormatError(f'{where}: home names {joint!r}, which is not an arm or gripper joint')
        limit = robot.limits[joint]
        if not limit.lower <= value <= limit.upper:
            raise SidecarFormatError(
                f'{where}: {joint}={value} is outside its limits [{limit.lower}, {limit.upper}]')


def require_model(robot: RobotDescription, kind: str) -> Path:
    """The robot's ``urdf`` or ``mjcf`` file, or an error saying it has none."""
    path = robot.urdf_path if kind == 'urdf' else robot.mjcf_path
    if path is None:
        raise RobotDescriptionError(f'{robot.where}: robot {robot.name!r} has no {kind} model')
    if not path.is_file():
        raise RobotDescriptionError(f'{robot.where}: {kind} model file {path} does not exist')
    return path
