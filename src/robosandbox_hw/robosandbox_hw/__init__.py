"""SO-101 hardware node on Feetech STS3215 servos, and an emulated servo bus to try it without an arm."""
