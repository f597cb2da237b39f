"""A throwaway virtual environment on top of the running interpreter's packages.

A ``.pth`` file adds the running environment's site-packages with ``site.addsitedir``, so their own
``.pth`` files (an editable trmzoo) work too; nothing is downloaded or reinstalled (torch stays the
running one), and pip and the build backend are the running environment's (a venv's base interpreter
may have neither). What gets installed into the venv itself comes first on its path.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path


def package_dirs() -> list[str]:
    """Where the running interpreter finds its packages (torch, pytest, trmzoo), in order."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for i, d in enumerate(dirs) if os.path.isdir(d) and d not in dirs[:i]]


def make_venv(folder: Path) -> str:
    """Create the venv in ``folder``; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = str(folder / "bin" / "python")
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    Path(own, "running_environment.pth").write_text(
        "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in package_dirs()) + "\n")
    return python


def pip_install(python: str, target: str | Path, cwd: Path) -> None:
    """``pip install`` a local package or wheel into the venv, offline, without its dependencies."""
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    str(target)], check=True, cwd=cwd, timeout=300)
