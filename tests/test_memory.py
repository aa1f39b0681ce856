"""keep_freed_memory: applied once on Linux with glibc, a no-op elsewhere, never an error."""
import platform
import subprocess
import sys

import pytest

from gen_models_utilities import memory


def test_does_nothing_without_glibc(monkeypatch):
    monkeypatch.setitem(memory._state, "applied", None)
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert memory.keep_freed_memory() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_blocks_are_reused_instead_of_unmapped():
    """After train(), freeing and re-allocating a 512 KB block maps no new memory."""
    code = """
import resource, torch
from gen_models_utilities import VelocityField, create_ring_gaussians, train
train(VelocityField(), create_ring_gaussians(500, seed=0)[0], n_steps=2, batch_size=250, seed=0, progress=False)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.empty(1000, 128).fill_(1.0)                 # warm: the heap holds a freed 512 KB block now
before = faults()
for _ in range(200):
    torch.empty(1000, 128).fill_(1.0)             # each block is freed at once and reused next time
print(faults() - before)
"""
    new_faults = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.split()[-1])
    # With glibc's defaults this loop faulted about 900 times here; stray faults from
    # torch's own threads stay far below one per block.
    assert new_faults < 200, new_faults
