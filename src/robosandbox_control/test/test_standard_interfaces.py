"""The standard interfaces we speak are the real ones, on the wire.

Here control_msgs and tf2_msgs are built into the venv from tools/interfaces
(PyPI has neither); on a ROS install they are the distribution's packages. A
type hash (RIHS01) covers every field name and type, nested types included, and
DDS matches publishers to subscribers by it: equal hashes mean a real MoveIt,
RViz or `ros2 action send_goal` talks to our nodes.
"""

import json
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from control_msgs.action import FollowJointTrajectory
import pytest
import rclpy
from tf2_msgs.msg import TFMessage

# Published hashes. TFMessage's is what `ros2 topic info --verbose /tf` prints on Jazzy
# and Kilted installs. control_msgs' come from the Kilted definition (6.3+, feedback with
# `index`); Jazzy's 5.x differs by those two fields, so its hashes differ.
PUBLISHED = {
    ('tf2_msgs', 'msg/TFMessage'):
        'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087',
    ('control_msgs', 'action/FollowJointTrajectory'):
        'RIHS01_ff29901b2693f5deb847e96084a1c2cdb26e70b7c847be21859b70a55fb29cf0',
    ('control_msgs', 'msg/JointTolerance'):
        'RIHS01_c254f9cece0f3b733017b6990fd46d1326e25242d6b8844398c97d9a88e7d648',
}


@pytest.mark.parametrize('package, interface', sorted(PUBLISHED))
def test_installed_type_hashes_are_the_published_ones(package, interface):
    description = Path(get_package_share_directory(package)) / f'{interface}.json'
    hashes = {h['type_name']: h['hash_string'] for h in json.loads(description.read_text())['type_hashes']}
    assert hashes[f'{package}/{interface}'] == PUBLISHED[package, interface]


def test_a_tf_publisher_announces_the_published_hash():
    rclpy.init()
    try:
        node = rclpy.create_node('type_hash_probe')
        node.create_publisher(TFMessage, 'tf_probe', 1)
        (info,) = node.get_publishers_info_by_topic('/tf_probe')
        assert str(info.topic_type_hash) == PUBLISHED['tf2_msgs', 'msg/TFMessage']
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_follow_joint_trajectory_has_the_kilted_fields():
    fields = list(FollowJointTrajectory.Feedback.get_fields_and_field_types())
    assert fields == ['header', 'joint_names', 'desired', 'actual', 'error', 'index',
                      'multi_dof_joint_names', 'multi_dof_desired', 'multi_dof_actual',
                      'multi_dof_error', 'multi_dof_index']
    goal = list(FollowJointTrajectory.Goal.get_fields_and_field_types())
    assert goal == ['trajectory', 'multi_dof_trajectory', 'path_tolerance', 'component_path_tolerance',
                    'goal_tolerance', 'component_goal_tolerance', 'goal_time_tolerance']


def test_robosandbox_msgs_defines_no_standard_interface():
    share = Path(get_package_share_directory('robosandbox_msgs'))
    ours = {p.stem for p in share.glob('*/*.idl')}
    assert not ours & {'FollowJointTrajectory', 'JointTolerance', 'TFMessage'}, ours
