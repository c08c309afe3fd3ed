"""Bringups of robosandbox: node graphs as data, their ROS 2 launch files and the robosandbox command."""
