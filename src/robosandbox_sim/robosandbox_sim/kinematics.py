"""Arm kinematics on the MuJoCo model: damped least-squares IK for the scripted expert.

Forward kinematics without MuJoCo (for nodes that are not the simulator) is
``robosandbox_description.kinematics``; the simulation test checks both agree.

Works on a private ``MjData`` of the robot's model, so it never disturbs a
running simulation and can serve a controller in another process that only
knows joint positions.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robosandbox_description.robot import load_robot, RobotDescription
from robosandbox_sim.scene import build_scene
from robosandbox_sim.task import load_task


class ArmKinematics:
    """Kinematics of the arm joints of ``robot`` up to its end-effector site."""

    def __init__(self, robot: RobotDescription | str = 'so101'):
        self.robot = load_robot(robot) if isinstance(robot, str) else robot
        # The empty 'home' task gives the robot alone, with its sidecar's site added.
        scene = build_scene(self.robot, load_task('home'), visual_detail=0.0)
        self.model = scene.model
        self.data = mujoco.MjData(self.model)
        n_arm = len(self.robot.arm_joints)
        self._arm_qpos = scene.joint_qpos[:n_arm]
        self._arm_dof = scene.joint_dof[:n_arm]
        self._site = self.model.site(self.robot.end_effector.site).id
        # Position limits (rad) of the arm joints: the description's.
        self.lower, self.upper = self.robot.lower[:n_arm], self.robot.upper[:n_arm]
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (m) and rotation matrix in the world frame."""
        self.data.qpos[self._arm_qpos] = q_arm
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return (self.data.site_xpos[self._site].copy(),
                self.data.site_xmat[self._site].reshape(3, 3).copy())

    def solve(self, position: np.ndarray, rotation: np.ndarray, q_start: np.ndarray,
              orientation_weight: float = 0.3, iterations: int = 50, damping: float = 1e-3,
              tolerance: float = 1e-4, limit_margin: float = 0.0) -> tuple[np.ndarray, float]:
        """Arm joint angles reaching ``position``/``rotation``, starting from ``q_start``.

        A 5-joint arm cannot match every orientation, so the pose error is a
        weighted least-squares one; returns the solution and its position error (m).
        The solution stays ``limit_margin`` (rad) inside every joint limit.
        """
        lower, upper = self.lower + limit_margin, self.upper - limit_margin
        q = np.clip(np.asarray(q_start, dtype=float), lower, upper)
        err = np.zeros(6)
        for _ in range(iterations):
            pos, rot = self.forward(q)
            err[:3] = position - pos
            # Rotation error as an angle-axis vector, world frame.
            err[3:] = orientation_weight * 0.5 * (
                np.cross(rot[:, 0], rotation[:, 0]) + np.cross(rot[:, 1], rotation[:, 1])
                + np.cross(rot[:, 2], rotation[:, 2]))
            if np.linalg.norm(err[:3]) < tolerance and np.linalg.norm(err[3:]) < 10 * tolerance:
                break
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site)
            jac = np.vstack([self._jacp[:, self._arm_dof],
                             orientation_weight * self._jacr[:, self._arm_dof]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), err)
            q = np.clip(q + dq, lower, upper)
        pos, _ = self.forward(q)
        return q, float(np.linalg.norm(position - pos))
