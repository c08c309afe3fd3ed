"""Episodes as data: rosbag2 (MCAP) recording, LeRobot v3 dataset export, inspection."""
