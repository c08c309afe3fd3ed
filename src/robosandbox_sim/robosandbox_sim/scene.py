"""Compose a MuJoCo model from a robot description and a task.

The robot's MJCF (or, lacking one, its URDF) is loaded as an MjSpec and the task's table, objects,
goal marker and cameras are added to it. Visual meshes can be simplified by
vertex clustering (``visual_detail``, the cell size in metres): the stock
SO-101 meshes have ~323k triangles, which CPU rendering (llvmpipe) cannot draw
at camera rates; 3 mm cells keep ~15k triangles and the arm's silhouette.
Collision geometry keeps the original meshes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

from robosandbox_description.robot import (
    CameraMount, ModelMismatchError, require_model, RobotDescription)
from robosandbox_sim.task import TaskSpec

LIMIT_SLACK = 1e-4  # rad; limits written with fewer digits in the sidecar than in the model
TIMESTEP = 0.002  # s; the STS3215 actuator gains in the SO-101 model are tuned for it
SHAPES = {'box': mujoco.mjtGeom.mjGEOM_BOX, 'sphere': mujoco.mjtGeom.mjGEOM_SPHERE,
          'cylinder': mujoco.mjtGeom.mjGEOM_CYLINDER}
GOAL_BODY = 'goal'
# Collision filtering: the robot touches the table and objects, not itself
# (joint limits keep the real arm's links apart, and the mesh hull pairs
# between links cost a third of a physics step).
ROBOT_CONTYPE, ROBOT_CONAFFINITY = 2, 1
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3


@dataclass(frozen=True)
class SceneModel:
    model: mujoco.MjModel
    robot: RobotDescription
    task: TaskSpec
    joint_qpos: np.ndarray      # qpos address of each robot joint, in robot.joints order
    joint_dof: np.ndarray       # dof address of each robot joint
    actuators: np.ndarray       # position actuator of each robot joint
    object_joint_qpos: dict[str, int]
    object_bodies: dict[str, int]
    camera_ids: dict[str, int]


def _read_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Triangle soup of an STL file: (3n, 3) vertices and (n, 3) faces.

    Binary STL is read directly (trimesh's loader dominated scene build time);
    vertex clustering merges the duplicated corners anyway.
    """
    raw = path.read_bytes()
    if len(raw) >= 84:
        count = int(np.frombuffer(raw, np.uint32, 1, 80)[0])
        if len(raw) == 84 + 50 * count:
            record = np.dtype([('normal', '<f4', 3), ('v', '<f4', (3, 3)), ('attr', '<u2')])
            vertices = np.frombuffer(raw, record, count, 84)['v'].reshape(-1, 3).astype(np.float64)
            return vertices, np.arange(3 * count, dtype=np.int64).reshape(-1, 3)
    import trimesh  # ASCII STL
    mesh = trimesh.load(path, force='mesh')
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


@lru_cache(maxsize=64)
def simplified_mesh(path: Path, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex-clustering simplification: merge the vertices of each ``cell``-sized voxel."""
    vertices, faces = _read_stl(path)
    keys = np.floor(vertices / cell).astype(np.int64)
    _, cluster = np.unique(keys, axis=0, return_inverse=True)
    cluster = cluster.ravel()
    counts = np.bincount(cluster)
    merged = np.zeros((len(counts), 3))
    np.add.at(merged, cluster, vertices)
    merged /= counts[:, None]
    new_faces = cluster[faces]
    keep = ((new_faces[:, 0] != new_faces[:, 1]) & (new_faces[:, 1] != new_faces[:, 2])
            & (new_faces[:, 0] != new_faces[:, 2]))
    new_faces = new_faces[keep]
    _, first = np.unique(np.sort(new_faces, axis=1), axis=0, return_index=True)
    return merged.astype(np.float32), new_faces[np.sort(first)].astype(np.int32)


def _simplify_visual_meshes(spec: mujoco.MjSpec, model_dir: Path, cell: float) -> None:
    collision_meshes = {g.meshname for g in spec.geoms
                        if g.type == mujoco.mjtGeom.mjGEOM_MESH and (g.contype or g.conaffinity)}
    for mesh in list(spec.meshes):
        if not mesh.file or not mesh.file.lower().endswith('.stl'):
            continue
        path = (model_dir / spec.meshdir / mesh.file).resolve()
        vertices, faces = simplified_mesh(path, cell)
        if mesh.name in collision_meshes:
            # Visual geoms get a simplified copy; collisions keep the original.
            lod = spec.add_mesh(name=f'{mesh.name}_lod', scale=mesh.scale,
                                refpos=mesh.refpos, refquat=mesh.refquat)
            lod.uservert = vertices.ravel()
            lod.userface = faces.ravel()
            for geom in spec.geoms:
                if geom.meshname == mesh.name and not (geom.contype or geom.conaffinity):
                    geom.meshname = lod.name
        else:
            mesh.file = ''
            mesh.uservert = vertices.ravel()
            mesh.userface = faces.ravel()


def _add_camera(spec: mujoco.MjSpec, cam: CameraMount) -> None:
    parent = spec.worldbody if cam.body in ('', 'world') else spec.body(cam.body)
    camera = parent.add_camera(name=cam.name, pos=list(cam.pos), fovy=cam.fovy)
    if cam.xyaxes is not None:
        camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
        camera.alt.xyaxes = list(cam.xyaxes)
    elif cam.quat is not None:
        camera.quat = list(cam.quat)


def _ensure_actuators(spec: mujoco.MjSpec, robot: RobotDescription) -> None:
    """URDF models bring no actuators: add position servos for the commanded joints."""
    driven = {a.target for a in spec.actuators
              if a.trntype == mujoco.mjtTrn.mjTRN_JOINT}
    for joint in robot.joints:
        if joint in driven:
            continue
        jnt = spec.joint(joint)
        if jnt is None:
            raise ModelMismatchError(
                f'{robot.where}: joint {joint!r} is not in model {model_file(robot).name} '
                f'(it has {sorted(j.name for j in spec.joints if j.name)})')
        # URDF carries no rotor inertia or damping: without some, a position servo
        # on light links is unstable at a 2 ms step.
        jnt.armature = max(jnt.armature, 0.01)
        jnt.damping = np.maximum(jnt.damping, 0.1)
        act = spec.add_actuator(name=joint, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=robot.actuator_kp, dampratio=1.0)
        if jnt.range[0] < jnt.range[1]:
            act.ctrlrange = list(jnt.range)
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE


def model_file(robot: RobotDescription) -> Path:
    """The file MuJoCo loads: the MJCF, else the URDF (MuJoCo reads both)."""
    return require_model(robot, 'mjcf' if robot.mjcf_path is not None or robot.urdf_path is None else 'urdf')


def check_against_model(robot: RobotDescription, model: mujoco.MjModel, actuators: np.ndarray) -> None:
    """Raise ModelMismatchError unless the sidecar fits the compiled model.

    The sidecar's limits are the authority, so they must lie inside what the
    model can do: its joint ranges and its actuators' control ranges.
    """
    where, name = robot.where, model_file(robot).name
    for joint, actuator in zip(robot.joints, actuators):
        jnt = model.joint(joint)
        if int(jnt.type[0]) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            raise ModelMismatchError(f'{where}: joint {joint!r} is not a hinge or slide joint')
        ours = robot.limits[joint]
        ranges = [('range', jnt.range)] if jnt.limited[0] else []
        if model.actuator_ctrllimited[actuator]:
            ranges.append(('actuator control range', model.actuator_ctrlrange[actuator]))
        for what, (lo, hi) in ranges:
            if ours.lower < lo - LIMIT_SLACK or ours.upper > hi + LIMIT_SLACK:
                raise ModelMismatchError(
                    f'{where}: limits of {joint!r} [{ours.lower}, {ours.upper}] go beyond its {what} '
                    f'[{lo:.5f}, {hi:.5f}] in {name}')
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, robot.end_effector.site) < 0:
        raise ModelMismatchError(
            f'{where}: end-effector site {robot.end_effector.site!r} is not in {name}')


def build_scene(robot: RobotDescription, task: TaskSpec, visual_detail: float = 0.003) -> SceneModel:
    path = model_file(robot)
    spec = mujoco.MjSpec.from_file(str(path))
    spec.option.timestep = TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    if visual_detail > 0:
        _simplify_visual_meshes(spec, path.parent, visual_detail)
    _ensure_actuators(spec, robot)
    for geom in spec.geoms:
        if geom.contype or geom.conaffinity:
            geom.contype, geom.conaffinity = ROBOT_CONTYPE, ROBOT_CONAFFINITY
    tool = robot.end_effector
    if tool.body:
        body = spec.body(tool.body)
        if body is None:
            raise ModelMismatchError(f'{robot.where}: end_effector body {tool.body!r} is not in {path.name}')
        body.add_site(name=tool.site, pos=list(tool.pos))

    # Rendering: one light without shadows, no reflections, no multisampling;
    # each of these costs more than the arm itself on a CPU renderer.
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.4, 0.4, 0.4]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    world = spec.worldbody
    world.add_light(name='top', pos=[0.2, 0.0, 1.5], dir=[0, 0, -1], castshadow=False,
                    diffuse=[0.5, 0.5, 0.5])
    world.add_geom(name='table', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.8, 0.6, 0.05],
                   rgba=[0.72, 0.6, 0.46, 1.0], friction=[1.0, 0.005, 0.0001],
                   contype=WORLD_CONTYPE, conaffinity=WORLD_CONAFFINITY)

    for obj in task.objects:
        body = world.add_body(name=obj.name, pos=[0.25, 0.0, 0.1])
        body.add_freejoint(name=f'{obj.name}_joint')
        body.add_geom(name=obj.name, type=SHAPES[obj.shape], size=list(obj.size) + [0] * (3 - len(obj.size)),
                      mass=obj.mass, rgba=list(obj.rgba), friction=[1.5, 0.01, 0.001],
                      condim=4, contype=WORLD_CONTYPE, conaffinity=WORLD_CONAFFINITY)
    if task.goal is not None:
        goal = world.add_body(name=GOAL_BODY, mocap=True, pos=[0.25, 0.0, 0.0])
        goal.add_geom(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[task.success.tolerance, 0.0005, 0],
                      rgba=[0.1, 0.7, 0.2, 0.6], contype=0, conaffinity=0)
    for cam in robot.cameras + task.cameras:
        if cam.body not in ('', 'world') and spec.body(cam.body) is None:
            raise ModelMismatchError(
                f'{robot.where}: camera {cam.name!r} is mounted on unknown body {cam.body!r}')
        _add_camera(spec, cam)

    model = spec.compile()
    joint_ids = [model.joint(j).id for j in robot.joints]
    actuators = []
    for jid, name in zip(joint_ids, robot.joints):
        ids = [a for a in range(model.nu)
               if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
               and model.actuator_trnid[a, 0] == jid]
        if not ids:
            raise ModelMismatchError(f'{robot.where}: joint {name!r} has no actuator in {path.name}')
        actuators.append(ids[0])
    check_against_model(robot, model, np.array(actuators))
    return SceneModel(
        model=model,
        robot=robot,
        task=task,
        joint_qpos=np.array([model.jnt_qposadr[j] for j in joint_ids]),
        joint_dof=np.array([model.jnt_dofadr[j] for j in joint_ids]),
        actuators=np.array(actuators),
        object_joint_qpos={o.name: int(model.jnt_qposadr[model.joint(f'{o.name}_joint').id])
                           for o in task.objects},
        object_bodies={o.name: model.body(o.name).id for o in task.objects},
        camera_ids={c.name: model.camera(c.name).id for c in robot.cameras + task.cameras},
    )
