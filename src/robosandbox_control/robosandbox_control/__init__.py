"""Arm contract shared by robosandbox backends."""
