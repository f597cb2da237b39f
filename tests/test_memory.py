"""Freed memory kept in the process: re-allocating a large block no longer faults its pages in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from trmzoo.errors import TrmzooError
from trmzoo.memory import keep_freed_memory


def _small_pages() -> bool:
    try:  # with transparent huge pages always on, a fresh mapping faults once per 2 MiB, not per page
        return "[always]" not in open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return True


glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not _small_pages(),
                           reason="glibc's malloc with 4 KiB pages only")

# Allocates and frees a 64 MiB tensor (above glibc's largest self-set mmap threshold, 32 MiB), writing
# every page; prints the page faults of each of five rounds after three (the heap settles in the first ones).
MEASURE = """
import resource, sys, torch
{setup}
def round_trip():
    torch.empty(16 * 1024 * 1024).fill_(1.0)
for _ in range(3):
    round_trip()
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    round_trip()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
ROUND_PAGES = 64 * 1024 * 1024 // 4096


def faults(setup: str, **env: str) -> int:
    """The page faults of a typical round (the median of five): a one-off event in one round, such as the
    system taking a page back, does not decide the test."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "TRMZOO_KEEP"))}
    environ.update(env, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", MEASURE.format(setup=setup)], env=environ,
                          capture_output=True, text=True, check=True)
    return sorted(int(n) for n in done.stdout.split()[-5:])[2]


@glibc
def test_kept_memory_is_reused_without_faults():
    assert faults("") >= ROUND_PAGES  # by default each round maps fresh pages
    assert faults("import trmzoo; assert trmzoo.keep_freed_memory()") < ROUND_PAGES // 100


@glibc
def test_the_command_line_keeps_freed_memory():
    run_cli = "from trmzoo.cli import main\nsys.argv = ['trmzoo', 'list']\ntry:\n    main()\nexcept SystemExit:\n    pass"
    assert faults(run_cli) < ROUND_PAGES // 100
    assert faults(run_cli, TRMZOO_KEEP_FREED_MEMORY="0") >= ROUND_PAGES


@pytest.mark.parametrize("name, value", [("TRMZOO_KEEP_FREED_MEMORY", "0"), ("TRMZOO_KEEP_FREED_MEMORY", "False"),
                                         ("TRMZOO_KEEP_FREED_MEMORY", "off"), ("MALLOC_TRIM_THRESHOLD_", "0"),
                                         ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")])
def test_left_alone_when_the_user_chose(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert keep_freed_memory() is False


def test_a_mistyped_opt_out_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TRMZOO_KEEP_FREED_MEMORY", "maybe")
    with pytest.raises(TrmzooError, match="^TRMZOO_KEEP_FREED_MEMORY='maybe': expected one of 1, true, yes, on"):
        keep_freed_memory()
