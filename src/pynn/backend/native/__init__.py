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

KERNELS = _ref.KERNELS
