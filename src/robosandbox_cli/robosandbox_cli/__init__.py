"""The ``robosandbox`` command: bringups without a ROS install, single nodes, package subcommands."""
