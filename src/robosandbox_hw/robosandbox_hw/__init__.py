"""SO-101 hardware node on Feetech STS3215 servos (issue: robosandbox_hw). Not implemented yet."""
