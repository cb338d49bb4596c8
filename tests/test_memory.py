"""keep_freed_memory: large blocks are reused instead of re-mapped, and the opt-out works."""

import os
import platform
import subprocess
import sys

import pytest

from rlmaml.memory import OPT_OUT_VARIABLE

# Allocates, touches and frees a 64 MB buffer 30 times; prints the minor page faults this cost.
FAULTS_OF_LARGE_BLOCKS = """
import resource
from rlmaml.memory import keep_freed_memory
applied = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    block = bytearray(64 * 2**20)  # zero-filled, so every page is touched
    del block
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(opt_out: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != OPT_OUT_VARIABLE}
    if opt_out is not None:
        env[OPT_OUT_VARIABLE] = opt_out
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_LARGE_BLOCKS], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_large_blocks_are_reused_not_remapped():
    applied, kept = _faults(None)
    opted_out, remapped = _faults("0")
    assert (applied, opted_out) == ("True", "False")
    # Mapped afresh, each of the 30 blocks faults on every page (4 KiB, or 2 MiB under transparent
    # huge pages); kept, the heap reuses the first block's pages for the other 29.
    assert kept * 10 < remapped
