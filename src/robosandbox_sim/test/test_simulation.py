import numpy as np
import pytest

from robosandbox_sim.simulation import Simulation


@pytest.fixture(scope='module')
def sim():
    s = Simulation('so101', 'pick_cube', seed=0)
    yield s
    s.close()


def rollout(sim, task, seed, steps=600):
    sim.reset(task, seed)
    target = sim.targets()
    target[:2] += [0.4, 0.3]
    sim.set_targets(target)
    trace = []
    for _ in range(steps // 50):
        sim.step(50)
        trace.append(np.concatenate([sim.joint_positions(), sim.object_poses()['cube'][0]]))
    return np.array(trace)


def test_reset_is_deterministic(sim):
    a = rollout(sim, 'pick_cube', 3)
    b = rollout(sim, 'pick_cube', 3)
    c = rollout(sim, 'pick_cube', 4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:, -3:], c[:, -3:])


def test_seed_randomises_cube_within_the_task_region(sim):
    positions = []
    for seed in range(10):
        sim.reset('pick_cube', seed)
        xyz = sim.object_poses()['cube'][0]
        assert 0.17 <= xyz[0] <= 0.26 and -0.08 <= xyz[1] <= 0.08
        positions.append(xyz)
    assert len({tuple(np.round(p, 6)) for p in positions}) == 10


def test_position_targets_are_reached(sim):
    sim.reset('pick_cube', 0)
    start = sim.time
    target = np.array([0.5, -0.5, 0.8, 0.9, -0.4, 0.8])
    sim.set_targets(target)
    sim.step(1500)  # 3 s
    np.testing.assert_allclose(sim.joint_positions(), target, atol=0.03)
    assert sim.status().elapsed == pytest.approx(3.0)
    # A reset starts a new episode but time runs on: /clock never goes backwards.
    sim.reset('pick_cube', 1)
    assert sim.time == pytest.approx(start + 3.0)
    assert sim.status().elapsed == 0.0


def test_lifted_success_and_home_task(sim):
    sim.reset('pick_cube', 1)
    assert not sim.status().success
    adr = sim.scene.object_joint_qpos['cube']
    sim.data.qpos[adr + 2] += 0.08
    sim.data.qvel[:] = 0
    sim.step(1)
    assert sim.status().success

    sim.reset('home', 5)
    assert not sim.status().success  # starts perturbed from home
    sim.set_targets(np.array([sim.robot.home[j] for j in sim.joint_names]))
    sim.step(2000)
    assert sim.status().success


def test_push_task_has_a_goal(sim):
    sim.reset('push_cube', 2)
    assert sim.goal_xy is not None
    adr = sim.scene.object_joint_qpos['cube']
    sim.data.qpos[adr:adr + 2] = sim.goal_xy
    sim.step(1)
    assert sim.status().success


def test_cameras_render_and_intrinsics(sim):
    sim.reset('pick_cube', 0)
    assert set(sim.camera_names) == {'front', 'wrist'}
    front = sim.render('front', 320, 240)
    assert front.shape == (240, 320, 3) and front.dtype == np.uint8
    assert front.std() > 5  # a scene, not a blank frame
    big = sim.render('wrist', 640, 480)
    assert big.shape == (480, 640, 3)
    k = sim.intrinsics('front', 320, 240)
    # fovy 45 degrees: fy = 120 / tan(22.5 degrees)
    assert k.fy == pytest.approx(120 / np.tan(np.radians(22.5)))
    assert (k.cx, k.cy) == (159.5, 119.5)     # pixel centres at integers (REP-104)


def test_joint_limits_match_the_model(sim):
    lo, hi = sim.joint_limits()
    assert lo[0] == pytest.approx(-1.91986, abs=1e-4) and hi[0] == pytest.approx(1.91986, abs=1e-4)
    assert np.all(lo < hi)


def test_sim_time_splits_without_running_backwards():
    from robosandbox_control.arm_interface import split_seconds
    assert split_seconds(2.9999999999) == (3, 0)
    assert split_seconds(2.002) == (2, 2_000_000)
    steps = [split_seconds(k * 0.002) for k in range(5000)]
    assert all(a < b for a, b in zip(steps, steps[1:]))
