"""Units, joint order, vector sizes and camera keys between our topics and a policy."""

import math
import warnings

import numpy as np
import pytest

from robosandbox_description.robot import load_robot
from robosandbox_policy.embodiment import (
    EmbodimentError, fit_vector, guess_convention, joint_units, LEROBOT_SO101,
    lerobot_feature_names, parse_image_topics, ROS, UnitsError)

JOINTS = load_robot('so101').joints
GRIPPER_RANGE = (-0.17453, 1.74533)


def test_lerobot_so101_units_are_degrees_and_gripper_percent():
    units = joint_units(LEROBOT_SO101, JOINTS, 'gripper', GRIPPER_RANGE)
    q = np.array([math.pi / 2, -math.pi / 4, 0.0, 0.1, -1.0, GRIPPER_RANGE[0]])
    a = units.to_policy(q)
    np.testing.assert_allclose(a[:5], np.degrees(q[:5]))
    assert a[5] == pytest.approx(0.0)                       # closed end of the jaw range
    assert units.to_policy(np.append(q[:5], GRIPPER_RANGE[1]))[5] == pytest.approx(100.0)
    np.testing.assert_allclose(units.to_ros(a), q)


def test_ros_units_are_the_identity_and_unknown_ones_refused():
    q = np.linspace(-1, 1, 6)
    np.testing.assert_array_equal(joint_units(ROS, JOINTS, 'gripper', GRIPPER_RANGE).to_policy(q), q)
    with pytest.raises(UnitsError, match="unknown unit convention"):
        joint_units('furlongs', JOINTS, 'gripper', GRIPPER_RANGE)


def test_convention_is_guessed_from_state_stats():
    assert guess_convention({'mean': np.zeros(6), 'std': np.full(6, 0.5)}) == ROS
    assert guess_convention({'min': np.full(6, -90.0), 'max': np.full(6, 95.0)}) == LEROBOT_SO101
    assert guess_convention(None) == ROS


def test_lerobot_feature_names():
    assert lerobot_feature_names(JOINTS[:2]) == ['shoulder_pan.pos', 'shoulder_lift.pos']


def test_vectors_are_padded_or_truncated_with_a_warning():
    with pytest.warns(UserWarning, match='zero-padded'):
        pad = fit_vector('observation.state', 6, 8)
    np.testing.assert_array_equal(pad(np.ones(6)), [1, 1, 1, 1, 1, 1, 0, 0])
    with pytest.warns(UserWarning, match='truncated'):
        cut = fit_vector('observation.state', 6, 4)
    assert cut(np.arange(6.0)).tolist() == [0, 1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert fit_vector('x', 6, 6)(np.arange(6.0)).tolist() == list(range(6))


def test_image_keys_default_to_camera_topics_and_can_be_remapped():
    keys = ['observation.images.front', 'observation.images.top']
    assert parse_image_topics([], keys) == {
        'observation.images.front': 'cameras/front/image_raw',
        'observation.images.top': 'cameras/top/image_raw'}
    # One camera may feed several keys; the prefix is optional.
    mapping = parse_image_topics(['top=cameras/front/image_raw',
                                  'observation.images.front=cameras/front/image_raw'], keys)
    assert set(mapping.values()) == {'cameras/front/image_raw'}


def test_bad_image_mappings_name_the_problem():
    keys = ['observation.images.front']
    with pytest.raises(EmbodimentError, match="'wrist'.*does not take"):
        parse_image_topics(['wrist=cameras/wrist/image_raw'], keys)
    with pytest.raises(EmbodimentError, match='not <image key>=<topic>'):
        parse_image_topics(['front'], keys)
    with pytest.raises(EmbodimentError, match='no topic for'):
        parse_image_topics([], keys, default_topic='')
