"""The environment our processes run in, defined once.

`source .venv/bin/activate` sets it (tools/setup_venv.sh writes
``eval "$(python -m robosandbox_cli.environment)"`` into the activate script),
and the ``robosandbox`` command applies it to itself and its children, so
``.venv/bin/robosandbox`` works without activating the venv. Values the user
has set win; on a ROS install, where no venv prefix holds an ament index, only
those defaults apply.
"""

from __future__ import annotations

import os
from pathlib import Path
import shlex
import sys

DEFAULTS = {
    'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
    # Shared memory + TCP for large samples: camera images arrive in ~2 ms instead of ~12.
    'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA',
    # Keep discovery on this machine unless the user says otherwise.
    'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
    # Headless OpenGL for MuJoCo cameras.
    'MUJOCO_GL': 'egl',
}
FASTDDS_PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
BRINGUP_PACKAGE = 'robosandbox_bringup'      # whose share holds config/fastdds.xml


def venv_prefix() -> Path | None:
    """This interpreter's prefix when it holds an ament index (our venv), else None."""
    prefix = Path(sys.prefix)
    return prefix if (prefix / 'share' / 'ament_index').is_dir() else None


def fastdds_profile(share: Path, env) -> str | None:
    """Our Fast DDS profile (``config/fastdds.xml`` under ``share``; see that file
    for why) to set in ``env``; None where the user set their own or it is absent."""
    profile = Path(share) / 'config' / 'fastdds.xml'
    if FASTDDS_PROFILE_VARIABLE in env or not profile.is_file():
        return None
    return str(profile)


def ros_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) with the venv prefix in the ament index and our defaults."""
    env = dict(os.environ if env is None else env)
    prefix = venv_prefix()
    if prefix is not None:
        prefixes = [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
        if str(prefix) not in prefixes:
            env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(prefix), *prefixes])
        profile = fastdds_profile(prefix / 'share' / BRINGUP_PACKAGE, env)
        if profile:
            env[FASTDDS_PROFILE_VARIABLE] = profile
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    return env


def shell_exports(env: dict[str, str] | None = None) -> str:
    """``export`` lines for what :func:`ros_environment` adds to ``env``."""
    before = dict(os.environ if env is None else env)
    after = ros_environment(before)
    return '\n'.join(f'export {k}={shlex.quote(v)}' for k, v in after.items() if before.get(k) != v)


if __name__ == '__main__':
    print(shell_exports())
