"""Output files and folders a command writes (run folders, datasets, submissions, pictures): nothing a user
already has is replaced unless they asked for it, and a file or a folder built in one go appears whole or
not at all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from trmzoo.errors import TrmzooError, os_error_message


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it over ``path``,
    so a reader or a killed writer never leaves half a file under the real name."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (Exception, KeyboardInterrupt) as exc:  # one the process survives (a full disk, Ctrl-C): no temporary file
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (str(tmp), tmp):
            exc.filename = str(path)  # the user knows the real name, not the temporary one
        raise


def check_output_file(path: Path | None, *, flag: str, overwrite: bool) -> None:
    """A file the user named for a command's output is not replaced unless they add ``--overwrite``."""
    if path is not None and not overwrite and os.path.lexists(path):  # a link, even a broken one, is there too
        raise TrmzooError(f"{flag} {path}: a file is there already; add --overwrite to replace it")


def check_output_dir(path: Path, *, what: str, overwrite: bool, is_replaceable: Callable[[Path], bool],
                     hint: str = "") -> bool:
    """Refuse ``path`` as a new ``what`` folder unless it is free; returns whether it exists with content.

    Free: missing (its parents are created later) or an empty folder. A folder with content is
    refused unless ``overwrite``, and even then only when ``is_replaceable`` recognises it as a
    ``what`` (``--overwrite`` never removes a folder it does not know). ``hint`` is added to the
    refusal (another way out, such as ``--resume``).
    """
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == path else f"cannot be created: {parent} is a file"
            raise TrmzooError(f"{path}: {where}, not a folder; pick another --out")
        if parent.exists():
            break
    if not path.is_dir():
        return False
    try:
        occupied = any(path.iterdir())
    except OSError as exc:
        raise TrmzooError(f"{path}: cannot read the folder ({exc.strerror})") from None
    if not occupied:
        return False
    if not overwrite:
        raise TrmzooError(f"{path}: already holds {'a ' + what if is_replaceable(path) else 'files'}; "
                          f"{hint}replace it with --overwrite, or pick another --out")
    if not is_replaceable(path):
        raise TrmzooError(f"{path}: not a {what} folder, so --overwrite leaves it alone; pick another --out")
    return True


def build_dir(path: Path, build: Callable[[Path], None], *, what: str) -> None:
    """Run ``build(folder)`` on a hidden folder beside ``path``, then put it in ``path``'s place
    (replacing what is there, which the caller has checked): a failed or killed build leaves
    no half folder under the real name, and the old one stays until the new one is complete."""
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    old = path.with_name(f".{path.name}.replaced-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        build(tmp)
        if path.exists():
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                os.replace(old, path)
                raise
        else:
            os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise TrmzooError(f"{os_error_message(exc)}; the {what} was not built and {path} is unchanged") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    for stale in path.parent.glob(f".{path.name}.building-*"):  # half builds of killed processes
        if not _process_alive(stale.name.rpartition("-")[2]):
            shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: str) -> bool:
    """Whether the process ``pid`` (a folder name's suffix) still runs on this machine."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, OSError):  # not a pid, or another user's process
        return True
    return True


class NewFolder:
    """A folder a command makes anew (a run's), which it can still take back: ``path`` is created, and
    its old content (with ``replace``) set aside in a hidden folder beside it. :meth:`keep` makes the
    change final (the old content is removed); :meth:`undo` puts back what was there before the command,
    so one that fails before its first result leaves the folder as it found it."""

    def __init__(self, path: Path, *, replace: bool) -> None:
        self.path, self.old, self.made, self.kept = path, None, not path.exists(), False
        try:
            if replace:
                self.old = path.with_name(f".{path.name}.replaced-{os.getpid()}")
                shutil.rmtree(self.old, ignore_errors=True)
                os.replace(path, self.old)
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if self.old is not None and self.old.exists() and not path.exists():
                os.replace(self.old, path)
            if exc.filename is None:
                exc.filename = str(path)
            raise TrmzooError(f"{os_error_message(exc)}; cannot create the run folder") from None

    def keep(self) -> None:
        if self.old is not None:
            shutil.rmtree(self.old, ignore_errors=True)
        self.old, self.kept = None, True

    def undo(self) -> None:
        """Put back what was there, unless :meth:`keep` has made the change final."""
        if self.kept:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        if self.old is not None:
            os.replace(self.old, self.path)
        elif not self.made:
            self.path.mkdir()  # it was an empty folder
        self.kept = True
