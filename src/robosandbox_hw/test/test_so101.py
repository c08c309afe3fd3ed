"""The SO-101 hardware stack against the emulated STS bus: driver, safety rules, faults.

The emulator answers on a pseudo-terminal; LeRobot's FeetechMotorsBus (over
feetech-servo-sdk and pyserial) opens it as it opens a USB adapter.
"""

import json
import os
from pathlib import Path
import re
import signal
import time

from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage
import numpy as np
import pytest

from robosandbox_cli.processes import NodeProcess
from robosandbox_control.qos import CAMERA_INFO_QOS, LATCHED_QOS
from robosandbox_description.robot import load_robot
from robosandbox_hw.controller import GoalLimiter, SafetyLimits
from robosandbox_hw.emulator import (
    BROADCAST, EmulatedBus, HOMING_OFFSET, LOCK, MIN_LIMIT, packet, PRESENT_POSITION, SYNC_READ)
from robosandbox_hw.so101_bus import BusError, CalibrationError, load_calibration, So101Bus, So101BusConfig

JOINTS = load_robot('so101').joints
POSE = np.array([0.3, -0.5, 0.6, 0.4, -0.3, 0.8])


def make_bus(emulator, calibration_file, robot, retries=2):
    return So101Bus(So101BusConfig(
        port=emulator.port, calibration_file=calibration_file, retries=retries,
        gripper_range=robot.gripper_range))


def max_speed(states, joint=0, window=0.2):
    """The fastest mean speed of ``joint`` over ``window`` s of joint_states, rad/s."""
    t = np.array([m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in states])
    q = np.array([m.position[joint] for m in states])
    j = np.searchsorted(t, t + window)
    ok = j < len(t)
    return float(np.max(np.abs(q[j[ok]] - q[ok]) / (t[j[ok]] - t[ok])))


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.02)
    return condition()


# --- the emulator itself ------------------------------------------------------------------

def test_a_read_is_timed_when_its_answer_took_the_positions():
    # A hand's move while a reply is still on the wire is not in that reply. Timed when
    # the reply went out (as before), such a read seemed to come after the move, and
    # bench/teleop.py charged a whole leader period to the steps that met one (LeRobot's
    # 30 Hz loop showed a read -> goal p99 of 33 ms for a write made right after its read).
    reads = []
    with EmulatedBus(ids=[1], baudrate=1200, on_position_read=reads.append) as bus:   # 130 ms replies
        port = os.open(bus.port, os.O_RDWR | os.O_NOCTTY)

        def position(request_sent=lambda: None):
            os.write(port, packet(BROADCAST, SYNC_READ, bytes([PRESENT_POSITION, 2, 1])))
            request_sent()
            reply = b''
            while len(reply) < 8:              # FF FF id length error pos_lo pos_hi checksum
                reply += os.read(port, 8 - len(reply))
            return int.from_bytes(reply[5:7], 'little')

        try:
            before = position()
            moves = []

            def move_while_the_reply_is_on_the_wire():
                assert wait_for(lambda: bus.packets == 2, 5.0)     # answered, not yet sent
                moves.append(bus.turn_by_hand({1: before + 500}))
            assert position(move_while_the_reply_is_on_the_wire) == before    # the old position...
            assert reads[1] < moves[0]                                          # ...read before the move
            assert position() == before + 500 and reads[2] > moves[0]
        finally:
            os.close(port)


# --- the driver stack on the emulator, no ROS ---------------------------------------------

def test_connect_writes_the_lerobot_calibration_and_moves_in_radians(emulator, calibration_file, robot):
    bus = make_bus(emulator, calibration_file, robot)
    bus.connect()
    try:
        assert bus.counters.calibration_written       # the servos had the factory limits
        calibration = json.loads(calibration_file.read_text())
        servo = emulator.servos[2]
        assert int.from_bytes(servo.regs[MIN_LIMIT:MIN_LIMIT + 2], 'little') == \
            calibration['shoulder_lift']['range_min']
        # Connected means torque off and EEPROM unlocked, as LeRobot leaves a torque-off arm.
        assert servo.regs[LOCK] == 0 and not any(emulator.torque().values())
        start = bus.read_positions()
        assert np.all(np.abs(start) < 0.3)            # the emulated arm rests mid-range
        bus.set_torque(True)
        assert servo.regs[LOCK] == 1 and all(emulator.torque().values())
        bus.write_goals(POSE)
        assert wait_for(lambda: np.allclose(bus.read_positions(), POSE, atol=0.01), 3.0), \
            bus.read_positions()
        health = bus.read_health()
        assert np.all(health['temperature'] > 0) and np.all(health['voltage'] > 5)
    finally:
        bus.close()
    assert not any(emulator.torque().values())        # torque off on close


def test_an_emulated_arm_can_start_calibrated_with_its_file(emulator, calibration_file, robot):
    # The emulator node writes its arm's calibration file and stores the same in the
    # servos: every emulated bringup warned "servo calibration differs" at each start.
    emulator.store_calibration(json.loads(calibration_file.read_text()))
    bus = make_bus(emulator, calibration_file, robot)
    bus.connect()
    try:
        assert not bus.counters.calibration_written
        assert np.all(np.abs(bus.read_positions()) < 0.3)      # read through it as before
    finally:
        bus.close()


def test_eeprom_is_only_written_unlocked(emulator, calibration_file, robot):
    bus = make_bus(emulator, calibration_file, robot)
    bus.connect()
    try:
        bus.set_torque(True)                          # LeRobot locks EEPROM with torque on
        bus.driver.write('Homing_Offset', 'elbow_flex', 100)
        assert emulator.servos[3].regs[HOMING_OFFSET] == 0
        bus.set_torque(False)                         # ...and unlocks it with torque off
        bus.driver.write('Homing_Offset', 'elbow_flex', 100)
        assert emulator.servos[3].regs[HOMING_OFFSET] == 100
    finally:
        bus.close()


@pytest.mark.parametrize('content, message', [
    (None, 'lerobot-calibrate'),
    ('{not json', 'not a LeRobot calibration file'),
    ('{"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": 0, "range_min": 0, "range_max": 4095}}',
     'no calibration for'),
])
def test_a_bad_calibration_file_is_refused(tmp_path, content, message):
    path = tmp_path / 'arm.json'
    if content is not None:
        path.write_text(content)
    with pytest.raises(CalibrationError, match=message):
        load_calibration(path)


def test_a_calibration_saved_by_lerobot_loads_unchanged(tmp_path):
    import draccus
    from lerobot.motors import MotorCalibration
    saved = {name: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=-30 + 10 * i,
                                    range_min=800 + i, range_max=3200 - i)
             for i, name in enumerate(JOINTS)}
    path = tmp_path / 'my_arm.json'
    with open(path, 'w') as f, draccus.config_type('json'):   # as Robot._save_calibration writes it
        draccus.dump(saved, f, indent=4)
    assert load_calibration(path) == saved


def test_corrupt_status_packets_are_recovered_by_retry(emulator, calibration_file, robot):
    bus = make_bus(emulator, calibration_file, robot, retries=3)
    bus.connect()
    try:
        emulator.faults(2).corrupt_rate = 0.1
        emulator.faults(5).drop_rate = 0.05
        emulator.faults(6).delay = 0.005             # slow, but inside the packet timeout
        for _ in range(40):
            assert np.all(np.isfinite(bus.read_positions()))
        assert bus.counters.retries > 0 and bus.counters.failures == 0
    finally:
        bus.close()


def test_a_dead_servo_fails_the_read_after_its_retries(emulator, calibration_file, robot):
    bus = make_bus(emulator, calibration_file, robot, retries=2)
    bus.connect()
    try:
        emulator.faults(4).dead = True
        with pytest.raises(BusError, match='read positions'):
            bus.read_positions()
        assert (bus.counters.retries, bus.counters.failures) == (2, 1)
    finally:
        emulator.faults(4).dead = False
        bus.close()


def test_goal_limiter_ramps_the_first_motion_then_limits_velocity():
    limits = SafetyLimits(lower=np.full(2, -2.0), upper=np.full(2, 2.0),
                          max_velocity=np.array([1.0, 2.0]), first_motion_velocity=0.1)
    limiter = GoalLimiter(limits, max_dt=0.2)
    limiter.reset(np.zeros(2))
    target = np.array([0.5, 3.0])                     # beyond the upper limit for joint 2
    goal = limiter.step(target, 0.1)
    np.testing.assert_allclose(goal, [0.01, 0.01])    # first motion: 0.1 rad/s on every joint
    for _ in range(400):
        goal = limiter.step(target, 0.1)
    np.testing.assert_allclose(goal, [0.5, 2.0])      # reached, and clipped to the limit
    assert not limiter.ramping
    goal = limiter.step(np.array([-0.5, -2.0]), 0.1)
    np.testing.assert_allclose(goal, [0.4, 1.8])      # then each joint at its own limit
    goal = limiter.step(np.array([-0.5, -2.0]), 5.0)   # a tick 5 s late (the loop stalled)
    np.testing.assert_allclose(goal, [0.2, 1.4])      # moves max_dt's worth, no jump


# --- the node through ROS ----------------------------------------------------------------

def test_commands_move_the_arm_and_bad_ones_are_refused(arm, emulator):
    process, client = arm('first_motion_velocity:=1.0')
    result = client.follow(POSE, 1.0)
    assert result.error_code == 0, result.error_string
    client.spin(0.5)
    np.testing.assert_allclose(client.position(), POSE, atol=0.02)
    before = client.position()
    beyond = POSE.copy()
    beyond[1] = 3.5                                   # shoulder_lift limit is about 1.75 rad
    assert client.follow(beyond, 0.5).error_code != 0
    nan = POSE.copy()
    nan[0] = float('nan')
    client.stream(nan, 0.2)
    client.spin(1.0)
    np.testing.assert_allclose(client.position(), before, atol=0.01)
    assert 'trajectory refused' in process.output.text()


def test_first_motion_is_slow_and_later_ones_respect_the_velocity_limit(arm):
    _, client = arm('first_motion_velocity:=0.25', 'max_velocity:=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]')
    start = client.position()
    target = start.copy()
    target[0] += 0.5
    client.follow(target, 0.1)                        # asked for 5 rad/s
    assert max_speed(client.states[-150:]) < 0.25 * 1.2, max_speed(client.states[-150:])
    client.spin(1.0)                                  # the ramp ends once the goal catches up
    client.states.clear()
    back = target.copy()
    back[0] -= 0.8
    assert client.follow(back, 0.1).error_code == 0
    assert 0.5 < max_speed(client.states) < 1.0 * 1.2, max_speed(client.states)  # capped, not ramped


def test_watchdog_holds_when_the_stream_stops_and_the_arm_still_chases_it(arm):
    # The slow first motion (0.2 rad/s) lags a streamed target due in 0.2 s: 0.3 s
    # after that last point the watchdog holds the arm where it is.
    process, client = arm('first_motion_velocity:=0.2', 'command_timeout:=0.3')
    start = client.position()
    target = start.copy()
    target[0] += 1.0
    client.stream(target, 0.2)                        # one message, then silence
    client.spin(2.0)
    moved = client.position()[0] - start[0]
    assert 0.02 < moved < 0.3, moved
    client.spin(1.0)
    assert abs(client.position()[0] - start[0] - moved) < 0.01     # holding
    assert 'watchdog' in process.output.text()


def test_emergency_stop_releases_torque_until_an_explicit_enable(arm, emulator):
    process, client = arm('first_motion_velocity:=1.0')
    assert all(emulator.torque().values())
    assert client.call('so101/emergency_stop').success
    assert not any(emulator.torque().values())
    before = client.position()
    target = before.copy()
    target[0] += 0.4
    result = client.follow(target, 0.5)
    assert result.error_code != 0 and 'enable' in result.error_string
    client.spin(0.5)
    assert not any(emulator.torque().values())
    np.testing.assert_allclose(client.position(), before, atol=0.01)
    assert client.call('so101/enable').success
    assert all(emulator.torque().values())
    assert client.follow(target, 0.5).error_code == 0


@pytest.mark.parametrize('on_error, torque_after', [('hold', True), ('release', False)])
def test_a_dead_servo_puts_the_arm_in_the_error_state(arm, emulator, on_error, torque_after):
    process, client = arm(f'on_error:={on_error}', 'max_consecutive_failures:=3')
    emulator.faults(3).dead = True
    client.wait(lambda: client.bus_status() is not None and client.bus_status().level == DiagnosticStatus.ERROR, 10.0,
                process.output.text)
    assert 'bus cycles failed' in client.bus_status().message
    live = {i: on for i, on in emulator.torque().items() if i != 3}
    assert all(on == torque_after for on in live.values()), live
    client.states.clear()
    client.spin(0.5)
    assert not client.states                          # no stale joint_states
    assert process.child.process.poll() is None       # no crash
    emulator.faults(3).dead = False
    assert client.call('so101/enable').success
    client.wait(lambda: client.states, 5.0)


def test_an_overloaded_servo_releases_torque(arm, emulator):
    process, client = arm()
    emulator.faults(2).overload = True
    client.wait(lambda: client.bus_status() is not None and 'overload' in client.bus_status().message,
                10.0, process.output.text)
    assert not any(emulator.torque().values())


def test_shutdown_releases_torque(arm, emulator):
    process, client = arm()
    client.wait(lambda: client.bus_status() is not None, 20.0, 'no diagnostics: not started')
    assert all(emulator.torque().values())
    assert process.interrupt(timeout=20) == 0, process.output.text()
    assert not any(emulator.torque().values()), process.output.text()


# Ctrl-C under ros2 launch reaches a node twice (the terminal's, then launch's), and
# the second often lands in cleanup; supervisors send SIGTERM; impatient people all of it.
SIGNALS = {
    'ctrl_c_under_ros2_launch': [(signal.SIGINT, 0.0), (signal.SIGINT, 0.0)],
    'second_ctrl_c_in_cleanup': [(signal.SIGINT, 0.0), (signal.SIGINT, 0.05)],
    'ctrl_c_three_times': [(signal.SIGINT, 0.0), (signal.SIGINT, 0.02), (signal.SIGINT, 0.2)],
    'sigterm': [(signal.SIGTERM, 0.0)],
    'sigterm_twice': [(signal.SIGTERM, 0.0), (signal.SIGTERM, 0.03)],
    'ctrl_c_then_sigterm': [(signal.SIGINT, 0.0), (signal.SIGTERM, 0.1)],
}


@pytest.mark.parametrize('signals', list(SIGNALS.values()), ids=list(SIGNALS))
def test_torque_is_off_when_the_node_ends_whatever_the_signals(arm, emulator, signals):
    process, client = arm()
    client.wait(lambda: client.bus_status() is not None, 20.0, 'no diagnostics: not started')
    assert all(emulator.torque().values())
    pid = process.child.process.pid
    ignored = int(re.search(r'SigIgn:\s*([0-9a-f]+)', Path(f'/proc/{pid}/status').read_text()).group(1), 16)
    assert not ignored & (1 << (signal.SIGINT - 1)), 'the node was started with SIGINT ignored'
    target = client.position()
    target[0] += 0.5
    client.stream(target, 1.0)                        # the bus is busy moving when the signals come
    client.spin(0.2)
    for sig, delay in signals:
        time.sleep(delay)                             # the moment is the point of the test
        process.child.process.send_signal(sig)
    assert process.child.process.wait(30) == 0, process.output.text()
    assert not any(emulator.torque().values()), process.output.text()


def test_the_wrist_camera_is_placed_in_tf_by_the_description(arm, camera_video, robot):
    process, client = arm('camera_names:=[wrist]', f'camera_devices:=[{camera_video}]')
    statics, infos = [], []
    client.node.create_subscription(TFMessage, '/tf_static', statics.append, LATCHED_QOS)
    client.node.create_subscription(CameraInfo, 'cameras/wrist/camera_info', infos.append, CAMERA_INFO_QOS)
    client.wait(lambda: statics and infos, 20.0, process.output.text)
    frames = {t.child_frame_id: t for t in statics[-1].transforms}
    optical = frames[infos[-1].header.frame_id]                  # camera_info names a frame TF has
    assert optical.header.frame_id == 'gripper_link'
    mount = next(c for c in robot.cameras if c.name == 'wrist')
    t = optical.transform.translation
    np.testing.assert_allclose([t.x, t.y, t.z], mount.pos, atol=1e-9)


def test_a_missing_serial_port_is_a_one_line_error(ros, calibration_file, tmp_path):
    process = NodeProcess('robosandbox_hw', 'so101_node', f'port:={tmp_path / "ttyNOTHERE"}',
                          f'calibration_file:={calibration_file}', 'connect_timeout:=0.5')
    try:
        assert process.child.process.wait(60) == 1
        fatal = [line for line in process.output.text().splitlines() if line.startswith('[so101_node]')]
        assert len(fatal) == 1 and 'no SO-101 on' in fatal[0] and 'ttyNOTHERE' in fatal[0], fatal
    finally:
        process.close()


def test_a_missing_calibration_fails_before_torque_is_on(ros, emulator, tmp_path):
    process = NodeProcess('robosandbox_hw', 'so101_node', f'port:={emulator.port}',
                          f'calibration_file:={tmp_path / "none.json"}')
    assert process.child.process.wait(timeout=60) == 1
    assert 'lerobot-calibrate' in process.output.text()
    assert not any(emulator.torque().values())
    process.close()


def test_a_camera_that_cannot_open_is_a_one_line_error_with_torque_off(ros, emulator, calibration_file,
                                                                        camera_video):
    # The first camera opens, the second does not: the node must close the first,
    # leave the servos unpowered and exit 1 naming the device, without a traceback.
    process = NodeProcess('robosandbox_hw', 'so101_node', f'port:={emulator.port}',
                          f'calibration_file:={calibration_file}', 'camera_names:=[front, wrist]',
                          f'camera_devices:=[{camera_video}, /dev/no_such_camera]')
    try:
        assert process.child.process.wait(timeout=60) == 1
        out = process.output.text()
        assert '/dev/no_such_camera' in out and 'Traceback' not in out, out
        assert not any(emulator.torque().values())
    finally:
        process.close()
