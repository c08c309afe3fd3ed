"""Policy node (LeRobot checkpoints, replay, scripted expert), recorder and export (issues: policy, recording). Not implemented yet."""
