"""A short tour of the simulation's interface, as a client in its own process.

Waits for joint states, /clock and a camera, moves the arm with the
trajectory action, resets the task, and prints what it saw. ``make run`` runs
it beside the sim (bringup ``sim_demo``); its source is the example of talking
to the sim from your own node.
"""

from __future__ import annotations

import time

from control_msgs.action import FollowJointTrajectory
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from robosandbox_control.arm_interface import to_seconds
from robosandbox_control.clients import ActionRefused, run_goal, trajectory_msg
from robosandbox_control.spinning import init, shutdown, spin_for, spin_until, wait_future
from robosandbox_msgs.msg import TaskStatus
from robosandbox_msgs.srv import ResetSim

# A reach to the right and down, then back (rad, SO-101 joint names).
POSE = {'shoulder_pan': 0.6, 'shoulder_lift': -0.4, 'elbow_flex': 0.6,
        'wrist_flex': 1.0, 'wrist_roll': 0.3, 'gripper': 1.0}


class SimDemo(Node):

    def __init__(self):
        super().__init__('sim_demo')
        self.declare_parameter('camera', 'front')
        camera = self.get_parameter('camera').value
        self.counts = {'joint_states': 0, 'clock': 0, 'image': 0, 'task_status': 0}
        self.joints: JointState | None = None
        self.sim_time = 0.0
        self.image_size = (0, 0)
        self.create_subscription(JointState, 'joint_states', self._on_joints, 10)
        self.create_subscription(Clock, '/clock', self._on_clock, 10)
        self.create_subscription(TaskStatus, 'task_status', self._on_status, 10)
        self.create_subscription(Image, f'cameras/{camera}/image_raw', self._on_image,
                                 qos_profile_sensor_data)
        self.action = ActionClient(self, FollowJointTrajectory, 'follow_joint_trajectory')
        self.reset = self.create_client(ResetSim, 'sim/reset')

    def _on_joints(self, msg):
        self.counts['joint_states'] += 1
        self.joints = msg

    def _on_clock(self, msg):
        self.counts['clock'] += 1
        self.sim_time = to_seconds(msg.clock)

    def _on_status(self, msg):
        self.counts['task_status'] += 1

    def _on_image(self, msg):
        self.counts['image'] += 1
        self.image_size = (msg.width, msg.height)

    def run(self) -> bool:
        log = self.get_logger()
        if not spin_until(self, lambda: self.joints and self.counts['image'] and self.sim_time > 0, 60.0):
            log.error(f'sim not seen within 60 s (received {self.counts})')
            return False
        start_counts, wall, sim0 = dict(self.counts), time.monotonic(), self.sim_time
        spin_for(self, 2.0)
        dt = time.monotonic() - wall
        rates = {k: (self.counts[k] - start_counts[k]) / dt for k in self.counts}
        log.info(f'receiving at {", ".join(f"{k} {v:.0f} Hz" for k, v in rates.items())}; '
                 f'sim time {self.sim_time:.2f} s (real-time factor {(self.sim_time - sim0) / dt:.2f}); '
                 f'image {self.image_size[0]}x{self.image_size[1]}')
        log.info('joints: ' + ', '.join(
            f'{n}={p:+.3f}' for n, p in zip(self.joints.name, self.joints.position)))

        names = [n for n in self.joints.name if n in POSE]
        goal = FollowJointTrajectory.Goal(trajectory=trajectory_msg(names, [(2.0, [POSE[n] for n in names])]))
        try:
            result = run_goal(self, self.action, goal, 30.0, server_timeout=10.0)
        except ActionRefused as e:
            log.error(str(e))
            return False
        reached = dict(zip(self.joints.name, self.joints.position))
        log.info(f'trajectory action: error_code {result.error_code} {result.error_string!r}; '
                 + ', '.join(f'{n}={reached[n]:+.3f}' for n in names))
        if result.error_code != FollowJointTrajectory.Result.SUCCESSFUL:
            return False

        if not self.reset.wait_for_service(timeout_sec=10.0):
            log.error('sim/reset service not available')
            return False
        response = wait_future(self, self.reset.call_async(ResetSim.Request(task='pick_cube', seed=7)), 30.0)
        log.info(f'reset: {response.message}')
        spin_for(self, 0.5)
        log.info('after reset: ' + ', '.join(
            f'{n}={p:+.3f}' for n, p in zip(self.joints.name, self.joints.position)))
        return response.success


def main(args=None) -> int:
    init(args)
    node = SimDemo()
    try:
        ok = node.run()
    except (KeyboardInterrupt, TimeoutError):
        ok = False
    finally:
        node.destroy_node()
        shutdown()
    return 0 if ok else 1


if __name__ == '__main__':
    raise SystemExit(main())
