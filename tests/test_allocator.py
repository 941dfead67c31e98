"""pynn keeps freed activation memory on the heap between steps (glibc only):
re-allocating the same large arrays must not fault their pages in again."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="malloc tuning applies to glibc only")

PROBE = """
import resource, numpy as np, pynn
def step():
    # like a forward pass: many activations alive at once, all freed at the end;
    # by default glibc trims the freed heap top and faults it in again next step
    acts = [np.ones((256 << 10,), np.float32) for _ in range(16)]   # 16 x 1 MiB
    return sum(float(a[-1]) for a in acts)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(pynn.MALLOC_TUNED, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def run_probe(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "PYNN_MALLOC"))}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, check=True)
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


def test_freed_arrays_are_reused_without_page_faults():
    tuned, faults = run_probe()
    assert tuned
    assert faults < 100      # 10 steps x 4,096 pages when the heap top is trimmed each time


def test_malloc_tuning_can_be_turned_off_and_respects_user_settings():
    tuned, faults = run_probe(PYNN_MALLOC_TUNING="0")
    assert not tuned and faults > 10 * 1024
    assert run_probe(MALLOC_TRIM_THRESHOLD_="1000000")[0] is False
