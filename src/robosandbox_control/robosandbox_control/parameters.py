"""Node parameters as typed data: one dataclass per node, declared once.

Each field of a node's parameter dataclass is made with :func:`parameter`,
which holds the default, the description, an optional range and whether the
parameter may change while the node runs, in the spirit of
generate_parameter_library's YAML in ros2_controllers. :func:`declare` turns
the dataclass into declared ROS parameters and returns an instance filled with
their values; :func:`watch` keeps that instance current when a user runs
``ros2 param set`` and tells the node, so live parameters take effect at once.

Rules, shown to users by ``ros2 param describe``:

- A parameter that cannot take effect while running is read-only: ROS refuses
  ``ros2 param set`` instead of reporting success and changing nothing.
- Every parameter has a value (``ros2 param dump`` lists them all). A default
  that depends on something else (joint limits depend on the robot) is given
  to :func:`declare` by the node, still declared once.
- Float parameters accept integers on the command line and in YAML files
  (``-p real_time_factor:=0``), as users type them; a set at run time must be
  of the declared type, as for any ROS node.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Sequence
import dataclasses
import functools
import math
from typing import Any, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter

T = TypeVar('T')

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
}


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a parameter field says about itself (kept in the field's metadata)."""

    description: str
    read_only: bool
    range: tuple[float, float] | None
    item_type: type | None        # element type of an array parameter
    validate: Callable[[Any], str] | None  # returns '' or why the value is refused


def parameter(default: Any, description: str, *, read_only: bool = False,
              range: tuple[float, float] | None = None, item_type: type | None = None,
              validate: Callable[[Any], str] | None = None) -> Any:
    """A parameter field. ``read_only``: fixed once the node runs.

    ``range`` bounds a number (or each element of a number array), both ends
    included. ``item_type`` gives the element type of an array whose default
    is empty. ``default=None`` means the node supplies it to :func:`declare`.
    """
    if isinstance(default, list):
        item_type = item_type or (type(default[0]) if default else str)
        kwargs = {'default_factory': functools.partial(list, default)}
    else:
        kwargs = {'default': default}
    spec = Spec(description, read_only, range, item_type, validate)
    return dataclasses.field(metadata={'ros': spec}, **kwargs)


def specs(parameters_class: type) -> dict[str, tuple[dataclasses.Field, Spec]]:
    return {f.name: (f, f.metadata['ros']) for f in dataclasses.fields(parameters_class)}


def _descriptor(name: str, value: Any, spec: Spec) -> ParameterDescriptor:
    if isinstance(value, list):
        kind = _ARRAY_TYPES[spec.item_type]
        number = spec.item_type in (int, float)
        is_float = spec.item_type is float
    else:
        kind = _TYPES[type(value)]
        number = type(value) in (int, float)
        is_float = type(value) is float
    descriptor = ParameterDescriptor(name=name, type=kind, description=spec.description,
                                     read_only=spec.read_only)
    if spec.range and number:
        low, high = spec.range
        if is_float:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
        else:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return descriptor


def _is_array(value: Any) -> bool:
    # rclpy hands number arrays over as array.array, YAML and Python as lists.
    return isinstance(value, (list, tuple, array.array))


def _refusal(name: str, value: Any, spec: Spec) -> str:
    """Why ``value`` is refused for ``name`` (ROS checks scalars' ranges; arrays are ours)."""
    values = value if _is_array(value) else [value]
    if spec.range is not None:
        low, high = spec.range
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                    math.isnan(v) or not low <= v <= high):
                return f'{name}={value!r} is outside [{low}, {high}]'
    if spec.validate is not None:
        why = spec.validate(value)
        if why:
            return f'{name}={value!r}: {why}'
    return ''


def _as_declared(value: Any, field_default: Any, spec: Spec) -> Any:
    if isinstance(field_default, float) or (isinstance(field_default, list) and spec.item_type is float):
        if _is_array(value):
            return [float(v) for v in value]
        return float(value)
    return list(value) if _is_array(value) else value


def declare(node: Node, parameters_class: type[T], **defaults: Any) -> T:
    """Declare every field of ``parameters_class`` on ``node``; its values.

    ``defaults`` supplies the defaults the node computes (fields declared with
    ``default=None``) or overrides a field's default for this node.
    Raises ``ValueError`` naming the parameter when a given value is refused.
    """
    values = {}
    overrides = node._parameter_overrides  # rclpy keeps -p/--params-file values here
    for name, (field, spec) in specs(parameters_class).items():
        if name in defaults:
            default = defaults[name]
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = field.default
        if default is None:
            raise TypeError(f'{parameters_class.__name__}.{name}: the node must give its default')
        if isinstance(default, tuple):
            default = list(default)
        default = _as_declared(default, default, spec)
        descriptor = _descriptor(name, default, spec)
        given = overrides.get(name)
        if given is not None:
            # An integer typed for a float parameter (-p rate:=30) is meant as a float.
            if descriptor.type == ParameterType.PARAMETER_DOUBLE and given.type_ == Parameter.Type.INTEGER:
                overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(given.value))
            elif (descriptor.type == ParameterType.PARAMETER_DOUBLE_ARRAY
                  and given.type_ == Parameter.Type.INTEGER_ARRAY):
                overrides[name] = Parameter(name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in given.value])
        empty = isinstance(default, list) and not default
        try:
            if empty:
                # rclpy would infer a byte array from []: declare the array type
                # itself, then give the parameter its empty value of that type.
                value = node.declare_parameter(name, Parameter.Type(descriptor.type), descriptor).value
                if value is None:
                    node._parameters[name] = Parameter(name, Parameter.Type(descriptor.type), [])
                    value = []
            else:
                value = node.declare_parameter(name, default, descriptor).value
        except Exception as e:  # rclpy's InvalidParameterTypeException, InvalidParameterValueException
            raise ValueError(f'parameter {name!r}: {e}') from None
        why = _refusal(name, value, spec)
        if why:
            raise ValueError(f'parameter {why}')
        values[name] = _as_declared(value, default, spec)
    return parameters_class(**values)


def given(node: Node, parameters_class: type, name: str) -> Any:
    """The value ``name`` will be declared with, before :func:`declare` runs.

    For a parameter other defaults depend on (the robot gives joint limits).
    """
    override = node._parameter_overrides.get(name)
    if override is not None:
        return override.value
    return specs(parameters_class)[name][0].default


def watch(node: Node, values: Any,
          on_change: Callable[[Sequence[str]], str] | None = None) -> None:
    """Keep ``values`` (from :func:`declare`) current under ``ros2 param set``.

    ``on_change(names)`` runs after the attributes are updated; it may refuse
    the change by returning a reason ('' accepts), and the old values come
    back. Read-only parameters never reach it: ROS refuses them first.
    """
    fields = specs(type(values))

    def on_set(params: list[Parameter]) -> SetParametersResult:
        try:
            return apply(params)
        except Exception as e:  # noqa: BLE001 - a bad set must be refused, never kill the node
            return SetParametersResult(successful=False, reason=f'{type(e).__name__}: {e}')

    def apply(params: list[Parameter]) -> SetParametersResult:
        changed = [p for p in params if p.name in fields]
        for p in changed:
            why = _refusal(p.name, p.value, fields[p.name][1])
            if why:
                return SetParametersResult(successful=False, reason=why)
        before = {p.name: getattr(values, p.name) for p in changed}
        for p in changed:
            setattr(values, p.name, _as_declared(p.value, before[p.name], fields[p.name][1]))
        try:
            why = on_change([p.name for p in changed]) if (on_change and changed) else ''
        except Exception as e:  # noqa: BLE001 - refused, and the old values come back
            why = f'{type(e).__name__}: {e}'
        if why:
            for name, value in before.items():
                setattr(values, name, value)
            return SetParametersResult(successful=False, reason=why)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
