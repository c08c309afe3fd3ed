"""Python logging of a node's ROS-free core, into the node's ROS log."""

from __future__ import annotations

import logging


class RosLogHandler(logging.Handler):
    """Records of Python's ``logging`` as the node's ROS log lines, at their level."""

    def __init__(self, ros_logger):
        super().__init__(logging.INFO)
        self._ros = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += '\n' + logging.Formatter().formatException(record.exc_info)
        if record.levelno >= logging.ERROR:
            self._ros.error(text)
        elif record.levelno >= logging.WARNING:
            self._ros.warning(text)
        else:
            self._ros.info(text)


def log_to_ros(package: str, ros_logger) -> None:
    """Send the Python logging of ``package`` (INFO and above) to ``ros_logger`` only."""
    core = logging.getLogger(package)
    core.setLevel(logging.INFO)
    core.propagate = False
    core.handlers = [RosLogHandler(ros_logger)]
