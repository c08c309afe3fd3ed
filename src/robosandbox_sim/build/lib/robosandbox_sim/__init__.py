"""MuJoCo simulation of SO-101 class arms: a ROS-agnostic core and its rclpy node."""
