"""The simulation core: one robot, one task, stepping, joints, cameras, task status.

Free of ROS, so it can be unit-tested and reused (the scripted expert plans on
the same model). Not thread-safe: the owner serialises access, and renders
from one thread (an EGL context belongs to the thread that made it).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import os

import numpy as np

# Headless by default; an explicit MUJOCO_GL (glfw, osmesa) wins.
os.environ.setdefault('MUJOCO_GL', 'egl')
import mujoco  # noqa: E402

from robosandbox_description.camera import Pinhole  # noqa: E402
from robosandbox_description.robot import load_robot, RobotDescription  # noqa: E402
from robosandbox_sim.scene import build_scene, GOAL_BODY, SceneModel  # noqa: E402
from robosandbox_sim.task import load_task, sample_layout, TaskSpec  # noqa: E402


@dataclass(frozen=True)
class TaskStatus:
    task: str
    seed: int
    success: bool
    elapsed: float                                   # s of sim time since reset
    object_poses: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (xyz, quat wxyz)


class Simulation:
    def __init__(self, robot: RobotDescription | str = 'so101', task: TaskSpec | str = 'pick_cube',
                 seed: int = 0, visual_detail: float = 0.003):
        self.robot = load_robot(robot) if isinstance(robot, str) else robot
        self.visual_detail = visual_detail
        self._scenes: dict[str, SceneModel] = {}
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self.scene: SceneModel | None = None
        self.data: mujoco.MjData | None = None
        self.reset(task, seed)

    # --- state -------------------------------------------------------------

    @property
    def model(self) -> mujoco.MjModel:
        return self.scene.model

    @property
    def task(self) -> TaskSpec:
        return self.scene.task

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.robot.joints

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self, task: TaskSpec | str | None = None, seed: int = 0) -> None:
        """Load ``task`` (or keep the current one) and set its initial state from ``seed``."""
        if task is None:
            spec = self.task
        elif isinstance(task, str):
            spec = self._scenes[task].task if task in self._scenes else load_task(task)
        else:
            spec = task
        scene = self._scenes.get(spec.name)
        if scene is None or scene.task != spec:
            scene = build_scene(self.robot, spec, self.visual_detail)
            self._scenes[spec.name] = scene
        if self.scene is not None and scene.model is not self.scene.model:
            self.close_renderers()
        self.scene = scene
        self.seed = int(seed)
        # Time keeps running across resets, so /clock never goes backwards.
        now = self.data.time if self.data is not None else 0.0
        self.data = mujoco.MjData(scene.model)
        self.data.time = now
        self.episode_start = now

        layout = sample_layout(spec, self.seed, len(self.robot.arm_joints))
        home = np.array([self.robot.home[j] for j in self.robot.joints])
        home[:len(self.robot.arm_joints)] += layout.arm_offsets
        start = self.clip_to_limits(home)
        self.data.qpos[scene.joint_qpos] = start
        self.data.ctrl[scene.actuators] = start
        for name, (xyz, yaw) in layout.object_poses.items():
            adr = scene.object_joint_qpos[name]
            self.data.qpos[adr:adr + 3] = xyz
            self.data.qpos[adr + 3:adr + 7] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        if layout.goal_xy is not None:
            mocap = self.model.body_mocapid[self.model.body(GOAL_BODY).id]
            self.data.mocap_pos[mocap] = [layout.goal_xy[0], layout.goal_xy[1], 0.0005]
        self.goal_xy = layout.goal_xy
        mujoco.mj_forward(self.model, self.data)
        self._initial_object_z = {name: float(self.data.xpos[body][2])
                                  for name, body in scene.object_bodies.items()}

    def clip_to_limits(self, q: np.ndarray) -> np.ndarray:
        lo, hi = self.joint_limits()
        return np.clip(q, lo, hi)

    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper position limits (rad) of the commanded joints: the description's."""
        return self.robot.lower, self.robot.upper

    def set_targets(self, q: np.ndarray) -> None:
        """Position targets (rad) of the commanded joints, in joint_names order."""
        self.data.ctrl[self.scene.actuators] = q

    def targets(self) -> np.ndarray:
        return self.data.ctrl[self.scene.actuators].copy()

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.scene.joint_qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self.scene.joint_dof].copy()

    def joint_efforts(self) -> np.ndarray:
        """Actuator torques (N m)."""
        return self.data.actuator_force[self.scene.actuators].copy()

    def end_effector_pose(self) -> tuple[np.ndarray, np.ndarray]:
        site = self.model.site(self.robot.end_effector.site).id
        return self.data.site_xpos[site].copy(), self.data.site_xmat[site].reshape(3, 3).copy()

    # --- task ----------------------------------------------------------------

    def object_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {name: (self.data.xpos[body].copy(), self.data.xquat[body].copy())
                for name, body in self.scene.object_bodies.items()}

    def status(self) -> TaskStatus:
        success_spec = self.task.success
        poses = self.object_poses()
        if success_spec.kind == 'lifted':
            z = poses[success_spec.object][0][2]
            success = z - self._initial_object_z[success_spec.object] >= success_spec.height
        elif success_spec.kind == 'at_goal':
            xy = poses[success_spec.object][0][:2]
            success = float(np.linalg.norm(xy - self.goal_xy)) <= success_spec.tolerance
        else:  # at_home
            target = np.array([self.robot.home[j] for j in self.joint_names])
            success = bool(np.all(np.abs(self.joint_positions() - target) <= success_spec.tolerance))
        return TaskStatus(task=self.task.name, seed=self.seed, success=bool(success),
                          elapsed=self.time - self.episode_start, object_poses=poses)

    # --- cameras -------------------------------------------------------------

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.scene.camera_ids)

    def body_pose(self, body: str | int) -> np.ndarray:
        """4x4 pose of a body (name or id) in the world frame."""
        pose = np.eye(4)
        b = self.model.body(body).id
        pose[:3, :3] = self.data.xmat[b].reshape(3, 3)
        pose[:3, 3] = self.data.xpos[b]
        return pose

    def camera_pose(self, camera: str) -> tuple[str, np.ndarray]:
        """The body ``camera`` is fixed to, and the camera's 4x4 pose in that body's
        frame (MuJoCo's convention: looking along -z, y up)."""
        c = self.scene.camera_ids[camera]
        rotation = np.zeros(9)
        mujoco.mju_quat2Mat(rotation, self.model.cam_quat[c])
        pose = np.eye(4)
        pose[:3, :3] = rotation.reshape(3, 3)
        pose[:3, 3] = self.model.cam_pos[c]
        return self.model.body(self.model.cam_bodyid[c]).name, pose

    def intrinsics(self, camera: str, width: int, height: int) -> Pinhole:
        """MuJoCo cameras are ideal pinholes of vertical field of view ``fovy``."""
        fovy = float(self.model.cam_fovy[self.scene.camera_ids[camera]])
        return Pinhole.from_fov(width, height, fovy_deg=fovy)

    def render(self, camera: str, width: int, height: int, out: np.ndarray | None = None) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from ``camera``."""
        renderer = self._renderers.get((width, height))
        if renderer is None:
            self._ensure_framebuffer(width, height)
            renderer = mujoco.Renderer(self.model, height, width)
            self._renderers[(width, height)] = renderer
        renderer.update_scene(self.data, camera=self.scene.camera_ids[camera])
        return renderer.render(out=out)

    def _ensure_framebuffer(self, width: int, height: int) -> None:
        # The offscreen buffer is sized in the model; grow it for larger cameras.
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)

    def close_renderers(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def close(self) -> None:
        self.close_renderers()
