"""The multiply-add peak probe (pynn._C.fma_peak_gflops, bench/peak.py) that #17's
"% of the machine's peak" is measured against: it checks its arguments, runs its loop on
every ISA and thread count, and its rate is one a real core can have (a loop the compiler
dropped would report thousands of GFLOPS per core). Timings themselves are never asserted."""
import os
import subprocess
import sys

import pytest

from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# No CPU core retires more than ~320 float32 GFLOPS (2 FMA x 16 lanes x 2 flops x 5 GHz).
MAX_GFLOPS_PER_CORE = 320


@pytest.fixture
def C():
    from pynn import _C
    return _C


@pytest.mark.parametrize("threads, iterations, what", [(0, 1000, "threads"), (-1, 1000, "threads"),
                                                        (1, 0, "iterations"), (2, -5, "iterations")])
def test_fma_peak_rejects_bad_arguments_by_name(C, threads, iterations, what):
    with pytest.raises(ValueError, match=what):
        C.fma_peak_gflops(threads, iterations)


@pytest.mark.parametrize("isa", ["generic", "avx2"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fma_peak_runs_its_loop_on_every_thread_at_a_rate_a_core_can_have(C, isa, threads):
    if isa == "avx2" and not C.cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2+FMA")
    before = C.isa()
    C.set_isa(isa)
    try:
        gflops = C.fma_peak_gflops(threads, 200_000)
    finally:
        C.set_isa(before)
    assert 0 < gflops < MAX_GFLOPS_PER_CORE * threads, gflops


def test_bench_peak_prints_the_peak_and_gemm_share_per_thread_count():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "peak.py"), "--threads", "1", "2",
                          "--repeat", "1"], capture_output=True, text=True, timeout=300, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2, out
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[1]) > 0 and cells[4].endswith("%"), row
