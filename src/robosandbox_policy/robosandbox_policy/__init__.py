"""Policies on the arm contract: LeRobot checkpoints, replays, a scripted expert, your own; the episode runner."""
