"""pytest-benchmark: one optimizer step, pynn native / numpy backend / torch.optim.

    pytest bench/test_optim.py --benchmark-only      # PYNN_BENCH_THREADS=1 for 1 thread each

extra_info carries params and effective GB/s (bytes read+written per step /
median time; Adam 28 B/param, SGD-momentum and RMSprop 20 B/param).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import optim_table as T  # noqa: E402

# PYNN_BENCH_THREADS=1 gives pynn and torch the same single thread (stable on a busy machine).
T.set_threads(int(os.environ.get("PYNN_BENCH_THREADS", "0")))


@pytest.mark.parametrize("impl", T.IMPLS)
@pytest.mark.parametrize("layout", list(T.LAYOUTS))
@pytest.mark.parametrize("opt_name", ["adam", "sgd_momentum", "rmsprop"])
def test_optimizer_step(benchmark, opt_name, layout, impl):
    step = T.make_step(opt_name, layout, impl)
    if step is None:
        pytest.skip(f"{impl} unavailable for {opt_name}")
    step()  # build state
    rounds = 3 if (impl == "pynn-numpy" and layout == "1x10M") else 10
    benchmark.pedantic(step, rounds=rounds, iterations=1, warmup_rounds=1)
    n = T.total_params(layout)
    t = benchmark.stats.stats.median
    benchmark.extra_info.update(params=n, bytes_per_param=T.BYTES_PER_PARAM[opt_name],
                                gb_per_s=T.BYTES_PER_PARAM[opt_name] * n / t / 1e9)
