"""Parameter dataclasses declared on an in-process node, set as ``ros2 param set`` would."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import rclpy
from rclpy.parameter import Parameter

from robosandbox_control.parameters import declare, given, parameter, watch


@dataclass
class Example:
    name: str = parameter('so101', 'A fixed name.', read_only=True)
    rate: float = parameter(30.0, 'A live rate, Hz.', range=(1.0, 100.0))
    count: int = parameter(2, 'A fixed count.', read_only=True, range=(0, 10))
    speeds: list = parameter(None, 'One per joint, rad/s.', item_type=float, range=(0.0, 5.0))
    topics: list = parameter([], 'Extra topics.', read_only=True, item_type=str)


@pytest.fixture
def make_node():
    rclpy.init()
    nodes = []

    def make(**overrides):
        node = rclpy.create_node(f'example_{len(nodes)}', parameter_overrides=[
            Parameter(k, value=v) for k, v in overrides.items()])
        nodes.append(node)
        return node
    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown()


def test_defaults_overrides_and_node_given_defaults(make_node):
    node = make_node(rate=50)       # an integer, as `-p rate:=50` types it
    values = declare(node, Example, speeds=[1.0, 2.0])
    assert values == Example(name='so101', rate=50.0, count=2, speeds=[1.0, 2.0], topics=[])
    assert isinstance(values.rate, float)
    assert node.get_parameter('topics').type_ == Parameter.Type.STRING_ARRAY
    described = node.describe_parameter('rate')
    assert described.description == 'A live rate, Hz.' and not described.read_only
    assert node.describe_parameter('count').read_only
    assert given(node, Example, 'rate') == 50 and given(node, Example, 'name') == 'so101'


@pytest.mark.parametrize('overrides, message', [
    ({'rate': 500.0}, "'rate'"),
    ({'speeds': [1.0, 9.0]}, r'speeds=\[1.0, 9.0\] is outside \[0.0, 5.0\]'),
    ({'speeds': [float('nan')]}, 'speeds'),
    ({'count': 'many'}, "'count'"),
])
def test_bad_start_values_name_the_parameter(make_node, overrides, message):
    with pytest.raises(ValueError, match=message):
        declare(make_node(**overrides), Example, speeds=[1.0])


def test_the_node_must_give_computed_defaults(make_node):
    with pytest.raises(TypeError, match='speeds: the node must give its default'):
        declare(make_node(), Example)


def test_live_sets_update_the_values_and_refusals_keep_them(make_node):
    node = make_node()
    values = declare(node, Example, speeds=[1.0, 1.0])
    seen = []

    def on_change(names):
        seen.append(list(names))
        return 'two speeds, please' if len(values.speeds) != 2 else ''
    watch(node, values, on_change)

    assert node.set_parameters([Parameter('rate', value=60.0)])[0].successful
    assert values.rate == 60.0 and seen == [['rate']]
    assert not node.set_parameters([Parameter('name', value='other')])[0].successful   # read-only
    assert not node.set_parameters([Parameter('speeds', value=[1.0, 7.0])])[0].successful
    result = node.set_parameters([Parameter('speeds', value=[1.0, 1.0, 1.0])])[0]
    assert not result.successful and result.reason == 'two speeds, please'
    assert values.speeds == [1.0, 1.0] and list(node.get_parameter('speeds').value) == [1.0, 1.0]
    assert node.set_parameters([Parameter('speeds', value=[0.5, 0.25])])[0].successful
    assert values.speeds == [0.5, 0.25] and all(isinstance(v, float) for v in values.speeds)


def test_a_failing_hook_refuses_instead_of_killing_the_node(make_node):
    node = make_node()
    values = declare(node, Example, speeds=[1.0])
    watch(node, values, lambda names: 1 / 0)
    result = node.set_parameters([Parameter('rate', value=20.0)])[0]
    assert not result.successful and 'ZeroDivisionError' in result.reason
    assert values.rate == 30.0
