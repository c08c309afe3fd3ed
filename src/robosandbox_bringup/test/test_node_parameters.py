"""Every node's parameters through ROS's parameter services, as ``ros2 param`` uses them.

``ros2 param get/set/dump/describe`` are clients of the services each node
offers (get/set/list/describe_parameters); this drives those services with
rclpy's AsyncParameterClient against the real node processes.
"""

from __future__ import annotations

import array
import json

from diagnostic_msgs.msg import DiagnosticArray
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from robosandbox_cli.processes import NodeProcess
from robosandbox_control.spinning import spin_until, wait_future
from robosandbox_description.robot import load_robot

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

SO101 = load_robot('so101')


class ParamClient:
    """The four ``ros2 param`` verbs against one node."""

    def __init__(self, node, target: str):
        self.node = node
        self.client = AsyncParameterClient(node, target)
        assert self.client.wait_for_services(timeout_sec=60.0), f'no parameter services on {target}'

    def dump(self) -> dict:
        names = wait_future(self.node, self.client.list_parameters()).result.names
        values = wait_future(self.node, self.client.get_parameters(names)).values
        return {n: _plain(Parameter.from_parameter_msg(_msg(n, v)).value) for n, v in zip(names, values)}

    def get(self, name: str):
        value = wait_future(self.node, self.client.get_parameters([name])).values[0]
        return _plain(Parameter.from_parameter_msg(_msg(name, value)).value)

    def set(self, name: str, value):
        result = wait_future(self.node, self.client.set_parameters([Parameter(name, value=value)]))
        return result.results[0]

    def describe(self, name: str):
        return wait_future(self.node, self.client.describe_parameters([name])).descriptors[0]


def _plain(value):
    """Number arrays arrive as array.array; compare them as lists."""
    return list(value) if isinstance(value, array.array) else value


def _msg(name, value):
    from rcl_interfaces.msg import Parameter as ParameterMsg
    return ParameterMsg(name=name, value=value)


@pytest.fixture(scope='module')
def ros():
    rclpy.init()
    node = rclpy.create_node('param_test_client')
    yield node
    node.destroy_node()
    rclpy.shutdown()


def _node(ros, process: NodeProcess, name: str) -> ParamClient:
    try:
        return ParamClient(ros, name)
    except AssertionError:
        pytest.fail(f'{name} did not come up:\n{process.abort()}')


def _check_common(params: ParamClient, read_only: str, read_only_value, live: str, live_value) -> None:
    """Dump lists values, describe explains them, read-only refuses, live takes effect."""
    dump = params.dump()
    assert read_only in dump and live in dump, sorted(dump)
    description = params.describe(live)
    assert description.description and not description.read_only
    refused = params.set(read_only, read_only_value)
    assert not refused.successful and 'read-only' in refused.reason.lower(), refused
    assert params.get(read_only) == dump[read_only]
    assert params.set(live, live_value).successful
    assert params.get(live) == live_value


def test_sim_parameters(ros):
    process = NodeProcess('robosandbox_sim', 'sim_node', 'cameras:=[front]', name='sim')
    try:
        params = _node(ros, process, 'sim')
        _check_common(params, 'task', 'push_cube', 'real_time_factor', 2.0)
        assert params.describe('seed').read_only
        rate = params.describe('joint_state_rate')
        assert rate.floating_point_range[0].from_value > 0
        out_of_range = params.set('joint_state_rate', 0.0)
        assert not out_of_range.successful
        assert params.get('joint_state_rate') == 100.0
        wrong_type = params.set('real_time_factor', 'fast')
        assert not wrong_type.successful and params.get('real_time_factor') == 2.0
        # The pacing follows at once: the sim's diagnostics report the new request.
        requested = []
        ros.create_subscription(DiagnosticArray, '/diagnostics', lambda msg: requested.extend(
            kv.value for status in msg.status for kv in status.values
            if kv.key == 'requested_real_time_factor'), 10)
        assert spin_until(ros, lambda: '2' in requested, 20.0), requested
        assert process.interrupt() == 0
    finally:
        process.close()


def test_policy_parameters(ros):
    process = NodeProcess('robosandbox_policy', 'policy_node', 'policy:=hold', name='policy')
    try:
        params = _node(ros, process, 'policy')
        _check_common(params, 'policy', 'expert', 'action_tolerance', 0.1)
        assert params.dump()['joint_names'] == []
        assert not params.set('action_tolerance', 5.0).successful       # range [0, 1]
        assert process.interrupt() == 0
    finally:
        process.close()


def test_recorder_parameters(ros, tmp_path):
    process = NodeProcess('robosandbox_data', 'recorder_node', f'runs_dir:={tmp_path}', name='recorder')
    try:
        params = _node(ros, process, 'recorder')
        _check_common(params, 'runs_dir', '/elsewhere', 'flush_period', 0.5)
        # An array parameter comes back as the array it was declared.
        from robosandbox_data.recorder_node import RecorderParameters
        from robosandbox_control.parameters import specs
        field, _ = specs(RecorderParameters)['topics']
        default = field.default_factory() if callable(field.default_factory) else field.default
        assert params.dump()['topics'] == list(default)
        assert 'teleop/action' in default and len(default) > 1
        assert process.interrupt() == 0
    finally:
        process.close()


def test_hardware_parameters_default_to_the_description(ros, tmp_path):
    from robosandbox_hw.emulator import calibration_for, EmulatedBus
    calibration = tmp_path / 'so101.json'
    calibration.write_text(json.dumps(calibration_for(SO101.joints, SO101.lower, SO101.upper)))
    with EmulatedBus(link=tmp_path / 'ttySO101') as bus:
        process = NodeProcess('robosandbox_hw', 'so101_node', f'port:={bus.port}',
                              f'calibration_file:={calibration}', name='so101')
        try:
            params = _node(ros, process, 'so101')
            dump = params.dump()
            # ros2 param dump shows the limits in force, which are the description's.
            assert dump['joint_lower'] == pytest.approx(list(SO101.lower))
            assert dump['joint_upper'] == pytest.approx(list(SO101.upper))
            assert dump['max_velocity'] == pytest.approx(list(SO101.max_velocity))
            _check_common(params, 'joint_upper', [3.0] * 6, 'command_timeout', 0.25)
            slower = [0.5] * 6
            assert params.set('max_velocity', slower).successful
            assert params.get('max_velocity') == slower
            assert not params.set('max_velocity', [0.5] * 5).successful       # one per joint
            assert not params.set('max_velocity', [0.0] * 6).successful       # a stopped joint
            assert not params.set('max_velocity', [float('nan')] * 6).successful
            assert params.get('max_velocity') == slower
            assert process.interrupt() == 0
        finally:
            process.close()
