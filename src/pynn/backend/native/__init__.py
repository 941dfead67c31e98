"""The native backend: thin wrappers over the C++ kernels in ``pynn._C``.

It starts from the numpy backend's kernels and replaces each one that has a
native implementation; ``pynn.backend.coverage()`` reports which did. Native
kernels compute float32 only: float64 inputs (gradient checks) are routed to
the numpy reference kernel explicitly, never silently cast.
"""
NAME = "native"

from .. import numpy as _ref  # noqa: E402
from pynn import _C  # noqa: E402,F401  (ImportError here means: extension not built)

globals().update({k: getattr(_ref, k) for k in _ref.KERNELS})

from .core import *  # noqa: F401,F403,E402
from .nn import *  # noqa: F401,F403,E402
from .conv import *  # noqa: F401,F403,E402
from .norm import *  # noqa: F401,F403,E402
from .ctc import *  # noqa: F401,F403,E402
from .gather import *  # noqa: F401,F403,E402
from .rnn import *  # noqa: F401,F403,E402
from .optim import *  # noqa: F401,F403,E402
from .mha import *  # noqa: F401,F403,E402

KERNELS = _ref.KERNELS


def _check_environment():
    """PYNN_NUM_THREADS and PYNN_ISA are read by the C++ runtime when it loads, which cannot
    warn: a value it had to ignore is reported here, once, naming the variable and what
    is valid (it used to be silently ignored)."""
    import os
    import warnings
    threads = os.environ.get("PYNN_NUM_THREADS")
    if threads is not None:
        try:
            ok = int(threads.strip()) >= 1
        except ValueError:
            ok = False
        if not ok:
            warnings.warn(f"PYNN_NUM_THREADS={threads!r} is not a positive integer (valid: 1, 2, ...); "
                          f"ignored, the native kernels use {_C.num_threads()} threads", RuntimeWarning, stacklevel=3)
    isa = os.environ.get("PYNN_ISA")
    if isa is not None:
        want = isa.strip().lower()
        if want in ("generic", "avx2", "auto"):
            if want == "avx2" and not _C.cpu_has_avx2_fma():
                warnings.warn("PYNN_ISA='avx2' but this CPU has no AVX2+FMA; using the generic kernels",
                              RuntimeWarning, stacklevel=3)
            elif want != "auto" and _C.isa() != want:  # e.g. "GENERIC": the runtime only matched lower case
                _C.set_isa(want)
        else:
            warnings.warn(f"PYNN_ISA={isa!r} is not one of 'generic', 'avx2', 'auto'; ignored, the native "
                          f"kernels use {_C.isa()!r}", RuntimeWarning, stacklevel=3)


_check_environment()
