"""Watching robosandbox in Rerun: live graphs, recorded episodes and LeRobot datasets."""
