"""Declared node parameters with descriptions, from one table per node."""

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter


def declare_parameters(node: Node, parameters: dict) -> dict:
    """Declare ``{name: (default, description)}``; return the values.

    Float parameters accept integers too (``-p real_time_factor:=0``), as a
    user typing on the command line would expect. An empty list default
    declares a string array (ROS cannot infer a type from ``[]``).
    """
    values = {}
    for name, (default, description) in parameters.items():
        is_float = isinstance(default, float)
        descriptor = ParameterDescriptor(description=description, dynamic_typing=is_float)
        if default == []:
            node.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor)
            try:
                values[name] = list(node.get_parameter(name).value)
            except ParameterUninitializedException:
                values[name] = []
            continue
        node.declare_parameter(name, default, descriptor)
        value = node.get_parameter(name).value
        if is_float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'parameter {name!r} must be a number, got {value!r}')
            value = float(value)
        values[name] = value
    return values
