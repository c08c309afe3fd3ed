"""Declared node parameters with descriptions, from one table per node."""

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter


def declare_parameters(node: Node, parameters: dict) -> dict:
    """Declare ``{name: (default, description)}``; return the values.

    Float parameters accept integers too (``-p real_time_factor:=0``), as a
    user typing on the command line would expect. An empty list default
    declares a string array (ROS cannot infer a type from ``[]``); a
    ``Parameter.Type`` default declares that type with no value (None unless set).
    """
    values = {}
    for name, (default, description) in parameters.items():
        is_float = isinstance(default, float)
        descriptor = ParameterDescriptor(description=description, dynamic_typing=is_float)
        if default == [] or isinstance(default, Parameter.Type):
            kind = Parameter.Type.STRING_ARRAY if default == [] else default
            node.declare_parameter(name, kind, descriptor)
            try:
                value = node.get_parameter(name).value
                values[name] = list(value) if default == [] else value
            except ParameterUninitializedException:
                values[name] = [] if default == [] else None
            continue
        node.declare_parameter(name, default, descriptor)
        value = node.get_parameter(name).value
        if is_float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'parameter {name!r} must be a number, got {value!r}')
            value = float(value)
        values[name] = value
    return values
