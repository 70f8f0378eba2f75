"""Installing plugin packages as a user would, for tests: pip, offline, beside the project.

``install_plugins`` copies each package (so no build folder lands in the tree) and installs
the copies with ``pip install --no-index --no-deps --no-build-isolation --target``: no
network, and the project's virtual environment untouched. ``cilbench`` then runs in a
subprocess with the target folder on ``PYTHONPATH``, where it finds the plugins through
their entry points, as after ``pip install -e``.

A plain module (not a conftest) so any test can ``from tests.plugin_install import ...``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def install_plugins(folders: Sequence[Path], target: Path) -> dict[str, str]:
    """Install the packages in ``folders`` into ``target``; returns the environment in which
    ``cilbench`` finds them."""
    copies = []
    for folder in folders:
        copy = target.parent / "sources" / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(str(copy))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
           "--no-build-isolation", "--target", str(target), *copies]  # fmt: skip
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    subprocess.run(pip, check=True, capture_output=True, text=True, env=env, timeout=300)
    return {**env, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}


def cilbench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``cilbench ARGS`` in a subprocess, from the project's root, in ``env``."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
