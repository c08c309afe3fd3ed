"""Users' policies as the plugin point loads them (``policy:=user_policies:<Class>``),
for the tests: the test puts this directory on the node's PYTHONPATH."""

import time

import numpy as np

from robosandbox_policy.expert import PickPlaceExpert


class SlowHold:
    """Holds the start pose, taking 0.1 s per tick: three times slower than 30 Hz."""

    def __init__(self, robot):
        self.start = None

    def reset(self):
        self.start = None

    def act(self, obs):
        time.sleep(0.1)
        if self.start is None:
            self.start = obs.joint_positions.copy()
        return self.start


class OverreachOnceLifted:
    """The expert, until the cube is lifted 5.2 cm: then a target far beyond wrist_flex's limit,
    as a learned policy trained on demonstrations that hug a limit may produce."""

    needs_object_poses = True

    def __init__(self, robot):
        self.expert = PickPlaceExpert(robot)
        self.joint_names = self.expert.joint_names
        self.wrist = list(self.joint_names).index('wrist_flex')
        self.cube_z = None

    def reset(self):
        self.expert.reset()
        self.cube_z = None

    def act(self, obs):
        z = float(obs.object_poses['cube'][0][2])
        self.cube_z = z if self.cube_z is None else self.cube_z
        action = self.expert.act(obs)
        if z > self.cube_z + 0.052:     # just past pick_cube's 5 cm: success is being reported
            action = np.array(action, dtype=float)
            action[self.wrist] = 3.0
        return action


class NoAct:
    def __init__(self, robot):
        pass
