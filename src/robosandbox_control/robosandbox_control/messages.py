"""Messages both backends (and the policy node) build the same way."""

from __future__ import annotations

from collections.abc import Iterable
import importlib

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from sensor_msgs.msg import CameraInfo

from robosandbox_description.camera import Pinhole

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
# Channels of the sensor_msgs/Image encodings that decode to 8-bit pixels.
IMAGE_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}


def image_array(msg) -> np.ndarray:
    """The pixels of a sensor_msgs/Image (an rclpy message or one decoded from a bag),
    uncopied where no reordering is needed: (h, w, 3|4) uint8 RGB(A), or (h, w) for
    mono8; rows padded beyond ``width`` (``step``) are cut. ValueError for any other
    encoding, naming it."""
    channels = IMAGE_CHANNELS.get(msg.encoding)
    if channels is None:
        raise ValueError(f'image encoding {msg.encoding!r} is not decoded; known: {sorted(IMAGE_CHANNELS)}')
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, :msg.width * channels]
    image = rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows
    if msg.encoding.startswith('bgr'):
        image = image[..., [2, 1, 0, 3][:channels]]
    return image


def message_class(type_name: str):
    """The Python class of an installed interface, from its graph name
    (``sensor_msgs/msg/Image``); ImportError, AttributeError or ValueError if absent."""
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def camera_info(pinhole: Pinhole, frame_id: str) -> CameraInfo:
    """camera_info of an undistorted pinhole; stamp it like the image it goes with."""
    fx, fy, cx, cy = pinhole.fx, pinhole.fy, pinhole.cx, pinhole.cy
    info = CameraInfo(width=pinhole.width, height=pinhole.height, distortion_model='plumb_bob',
                      d=[0.0] * 5, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])
    info.header.frame_id = frame_id
    return info


def diagnostic_status(name: str, level: bytes, message: str, hardware_id: str = '',
                      values: Iterable[tuple[str, object]] = ()) -> DiagnosticStatus:
    """One status; ``values`` are (key, value) pairs, the values shown as text."""
    return DiagnosticStatus(level=level, name=name,
                            message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values])


def diagnostic_array(stamp, statuses: Iterable[DiagnosticStatus]) -> DiagnosticArray:
    array = DiagnosticArray(status=list(statuses))
    array.header.stamp = stamp
    return array
