"""A checkpoint's inference in a process of its own: the same answers and refusals as
in one process, and never a process left behind, however the node ends."""

import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from robosandbox_cli.processes import pid_alive
from robosandbox_description.robot import load_robot
from robosandbox_policy.checkpoint import CheckpointError
from robosandbox_policy.lerobot_policy import CheckpointPolicy
from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import PolicyError

JOINTS = load_robot('so101').joints
GRIPPER_RANGE = (-0.17453, 1.74533)
HOME = np.array([0.0, -1.2, 1.1, 1.1, 0.0, 0.0])
INFERENCE_PROCESS = 'robosandbox_policy.inference_process'


def make_policy(ref, **kwargs):
    return CheckpointPolicy(str(ref), JOINTS, 'gripper', GRIPPER_RANGE, torch_threads=1, **kwargs)


def inference_children(parent: int) -> list[int]:
    pids = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            ppid = int(stat.read_text().rsplit(')', 1)[1].split()[1])
            command = (stat.parent / 'cmdline').read_bytes()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if ppid == parent and INFERENCE_PROCESS.encode() in command:
            pids.append(int(stat.parent.name))
    return [pid for pid in pids if pid_alive(pid)]


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def observation(seed=0):
    image = np.random.default_rng(seed).integers(0, 255, (120, 160, 3), np.uint8)
    return Observation(time=0.0, joint_positions=HOME.copy(), images={'observation.images.front': image})


def test_a_checkpoint_in_its_own_process_answers_as_in_one(act_checkpoint):
    here, there = make_policy(act_checkpoint), make_policy(act_checkpoint, own_process=True)
    try:
        assert here.inference_pid is None and pid_alive(there.inference_pid)
        assert there.inference_pid in inference_children(os.getpid())
        for name in ('joint_names', 'fps', 'image_topics', 'image_shapes', 'needs_object_poses'):
            assert getattr(there, name) == getattr(here, name), name
        assert there.units.convention == here.units.convention
        for seed in range(3):
            np.testing.assert_allclose(there.predict_chunk(observation(seed)),
                                       here.predict_chunk(observation(seed)), atol=1e-6)
        there.reset()                    # goes between inferences, unanswered
        assert there.predict_chunk(observation()).shape == (20, 6)
    finally:
        here.close()
        there.close()
    assert not pid_alive(there.inference_pid)


def test_a_broken_checkpoint_fails_the_start_with_its_reason_and_no_process_left(tmp_path, act_checkpoint):
    import shutil
    broken = tmp_path / 'broken'
    shutil.copytree(act_checkpoint, broken)
    (broken / 'model.safetensors').write_bytes(b'\0' * 64)
    with pytest.raises(CheckpointError, match='cannot load the weights'):
        make_policy(broken, own_process=True)
    assert inference_children(os.getpid()) == []


def test_an_inference_process_that_dies_stops_the_run_with_the_reason(act_checkpoint):
    policy = make_policy(act_checkpoint, own_process=True)
    try:
        os.kill(policy.inference_pid, signal.SIGKILL)
        with pytest.raises(PolicyError, match='inference process (ended|is gone).*SIGKILL'):
            policy.predict_chunk(observation())
        # Through the control path: the run stops (the node then holds the arm).
        deadline = time.monotonic() + 30.0
        with pytest.raises(PolicyError, match='inference failed'):
            while time.monotonic() < deadline:
                policy.act(observation())
                time.sleep(0.01)
    finally:
        policy.close()


def test_the_inference_process_ends_when_its_parent_is_killed(act_checkpoint):
    # The OOM killer or a SIGKILL leaves no node to stop it: it must see its parent go.
    code = ('from robosandbox_policy.lerobot_policy import CheckpointPolicy\n'
            'from robosandbox_description.robot import load_robot\n'
            f'p = CheckpointPolicy({str(act_checkpoint)!r}, load_robot("so101").joints, "gripper", '
            f'{GRIPPER_RANGE}, torch_threads=1, own_process=True)\n'
            'print("child", p.inference_pid, flush=True)\n'
            'import time\n'
            'time.sleep(600)\n')
    parent = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    try:
        lines = iter(parent.stdout.readline, '')      # the child shares this stdout
        child = next(int(m.group(1)) for line in lines if (m := re.match(r'child (\d+)', line)))
        assert pid_alive(child)
        parent.kill()
        parent.wait(10)
        assert wait_gone(child), 'the inference process outlived its parent'
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()


@pytest.mark.nodes
def test_ctrl_c_stops_the_node_and_its_inference_process(act_checkpoint):
    # The terminal's Ctrl-C goes to the node's process group, twice under ros2 launch;
    # the inference process is in a group of its own and the node stops it on its way out.
    from robosandbox_cli.processes import NodeProcess
    node = NodeProcess('robosandbox_policy', 'policy_node', f'policy:={act_checkpoint}',
                       'torch_threads:=1', name='policy')
    try:
        deadline = time.monotonic() + 120.0
        while not (found := re.search(r'inference in process (\d+)', node.output.text())):
            assert node.returncode is None and time.monotonic() < deadline, node.output.text()
            time.sleep(0.1)
        child = int(found.group(1))
        assert pid_alive(child)
        group = os.getpgid(node.child.process.pid)
        assert os.getpgid(child) != group
        os.killpg(group, signal.SIGINT)
        os.killpg(group, signal.SIGINT)
        assert node.child.process.wait(30) == 0, node.output.text()
        assert wait_gone(child), node.output.text()
        assert 'Traceback' not in node.output.text(), node.output.text()
    finally:
        node.close()
