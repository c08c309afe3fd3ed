"""Robot descriptions: an MJCF or URDF model plus a small YAML sidecar.

The sidecar says what the model alone does not: which joints form the arm,
which one is the gripper and where it is open or closed, the home pose, the
end-effector site and the robot's cameras. See ``robots/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import importlib.util
from pathlib import Path
from typing import Any

import mujoco
import yaml

ROBOTS_DIR = Path(__file__).resolve().parent / 'robots'


class RobotDescriptionError(ValueError):
    """A robot description cannot be used; the message says what to fix."""


class SidecarFormatError(RobotDescriptionError):
    """The YAML sidecar is malformed or misses a required key."""


class ModelMismatchError(RobotDescriptionError):
    """The sidecar names something the model does not have, or out of its range."""


@dataclass(frozen=True)
class CameraMount:
    """A camera fixed to a body of the robot (or of the world, for scene cameras)."""

    name: str
    body: str                      # '' or 'world' for a fixed camera
    pos: tuple[float, float, float]
    xyaxes: tuple[float, ...] | None = None
    quat: tuple[float, float, float, float] | None = None
    fovy: float = 60.0             # vertical field of view, degrees


@dataclass(frozen=True)
class RobotDescription:
    name: str
    model_path: Path
    arm_joints: tuple[str, ...]
    gripper_joint: str
    gripper_open: float
    gripper_closed: float
    home: dict[str, float]
    end_effector_site: str
    cameras: tuple[CameraMount, ...] = ()
    # When the model has no end-effector site, the sidecar places one on a body.
    end_effector_body: str = ''
    end_effector_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    actuator_kp: float = 50.0      # for models (URDF) that bring no actuators
    sidecar: Path | None = field(default=None, compare=False)

    @property
    def joints(self) -> tuple[str, ...]:
        """All commanded joints: the arm joints, then the gripper."""
        return self.arm_joints + (self.gripper_joint,)


def _require(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise SidecarFormatError(f'{where}: missing required key {key!r}')
    return data[key]


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
    )


def _resolve_model(model: Any, base_dir: Path, where: str) -> Path:
    if not isinstance(model, dict):
        raise SidecarFormatError(f"{where}: 'model' must be a mapping with 'file' or 'package' and 'path'")
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
        raise SidecarFormatError(f"{where}: 'model' needs 'file' or 'package' and 'path'")
    if not path.is_file():
        raise RobotDescriptionError(f'{where}: model file {path} does not exist')
    return path


def _end_effector(value, where: str) -> dict:
    """``end_effector: <site>`` or ``end_effector: {body: <body>, pos: [x, y, z]}``."""
    if isinstance(value, str) and value:
        return {'end_effector_site': value}
    if isinstance(value, dict) and 'body' in value:
        return {'end_effector_site': 'end_effector', 'end_effector_body': str(value['body']),
                'end_effector_pos': _floats(value.get('pos', (0, 0, 0)), 3, f'{where}: end_effector.pos')}
    raise SidecarFormatError(f"{where}: 'end_effector' must name a site or be {{body: ..., pos: [x, y, z]}}")


def load_robot(name_or_path: str | Path, model_file: str | Path | None = None) -> RobotDescription:
    """Load a robot by packaged name (``so101``) or sidecar path.

    ``model_file`` overrides the model the sidecar points to, for models that
    are not packaged (e.g. a local copy of MuJoCo Menagerie).
    """
    path = Path(name_or_path)
    if path.suffix not in ('.yaml', '.yml'):
        path = ROBOTS_DIR / f'{name_or_path}.yaml'
        if not path.is_file():
            known = sorted(p.stem for p in ROBOTS_DIR.glob('*.yaml'))
            raise RobotDescriptionError(f'unknown robot {str(name_or_path)!r}; packaged robots: {known}')
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RobotDescriptionError(f'cannot read robot sidecar {path}: {e}') from None
    except yaml.YAMLError as e:
        raise SidecarFormatError(f'{where}: invalid YAML: {e}') from None
    if not isinstance(data, dict):
        raise SidecarFormatError(f'{where}: expected a mapping at the top level')

    model = {'file': str(model_file)} if model_file else _require(data, 'model', where)
    gripper = _require(data, 'gripper', where)
    if not isinstance(gripper, dict):
        raise SidecarFormatError(f"{where}: 'gripper' must be a mapping with joint, open, closed")
    cameras = data.get('cameras') or {}
    home = _require(data, 'home', where)
    if not isinstance(home, dict):
        raise SidecarFormatError(f"{where}: 'home' must map joint names to positions (rad)")
    try:
        description = RobotDescription(
            name=str(data.get('name', path.stem)),
            model_path=_resolve_model(model, path.parent, where),
            arm_joints=tuple(str(j) for j in _require(data, 'arm_joints', where)),
            gripper_joint=str(_require(gripper, 'joint', f'{where}: gripper')),
            gripper_open=float(_require(gripper, 'open', f'{where}: gripper')),
            gripper_closed=float(_require(gripper, 'closed', f'{where}: gripper')),
            home={str(k): float(v) for k, v in home.items()},
            **_end_effector(_require(data, 'end_effector', where), where),
            cameras=tuple(parse_camera(n, c, where) for n, c in cameras.items()),
            actuator_kp=float(data.get('actuator_kp', 50.0)),
            sidecar=path,
        )
    except (TypeError, ValueError) as e:
        if isinstance(e, RobotDescriptionError):
            raise
        raise SidecarFormatError(f'{where}: {e}') from None
    missing = set(description.joints) - set(description.home)
    if missing:
        raise SidecarFormatError(f'{where}: home pose misses joint(s) {sorted(missing)}')
    return description


def check_against_model(robot: RobotDescription, model: mujoco.MjModel) -> None:
    """Raise ModelMismatchError unless every name and value in the sidecar fits the model."""
    where = str(robot.sidecar or robot.name)
    model_joints = {model.joint(i).name for i in range(model.njnt)}
    for joint in robot.joints:
        if joint not in model_joints:
            raise ModelMismatchError(
                f'{where}: joint {joint!r} is not in model {robot.model_path.name} '
                f'(it has {sorted(j for j in model_joints if j)})')
        jnt = model.joint(joint)
        if int(jnt.type[0]) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            raise ModelMismatchError(f'{where}: joint {joint!r} is not a hinge or slide joint')
    for joint, value in list(robot.home.items()) + [
            (robot.gripper_joint, robot.gripper_open), (robot.gripper_joint, robot.gripper_closed)]:
        if joint not in robot.joints:
            raise ModelMismatchError(f'{where}: home names {joint!r}, which is not an arm or gripper joint')
        jnt = model.joint(joint)
        if jnt.limited[0]:
            lo, hi = jnt.range
            if not lo - 1e-6 <= value <= hi + 1e-6:
                raise ModelMismatchError(
                    f'{where}: {joint}={value} is outside its range [{lo:.4f}, {hi:.4f}]')
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, robot.end_effector_site) < 0:
        raise ModelMismatchError(f'{where}: end-effector site {robot.end_effector_site!r} is not in the model')
    for cam in robot.cameras:
        if cam.body not in ('', 'world') and mujoco.mj_name2id(
                model, mujoco.mjtObj.mjOBJ_BODY, cam.body) < 0:
            raise ModelMismatchError(f'{where}: camera {cam.name!r} is mounted on unknown body {cam.body!r}')
