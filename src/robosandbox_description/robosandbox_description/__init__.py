"""Robot descriptions every backend follows: models from PyPI, a sidecar of limits and frames; no MuJoCo."""
