"""Episodes on disk: rosbag2 (MCAP) bags with the episode in their metadata, and
their conversion to LeRobot datasets. No ROS runtime needed: rosbags and
LeRobot do the file work; the recorder node is the rclpy side.
"""
