"""The numpy reference backend: readable NumPy that reads like the math.

Every kernel of pynn lives here first; this is the spec the native backend is
tested against. Modules: ``core`` (matmul), ``nn`` (activations, softmax,
losses' fused kernels), ``optim`` (optimizer update rules).
"""
NAME = "numpy"

from .core import *  # noqa: F401,F403,E402
from .nn import *  # noqa: F401,F403,E402
from .conv import *  # noqa: F401,F403,E402
from .norm import *  # noqa: F401,F403,E402
from .rnn import *  # noqa: F401,F403,E402
from .gather import *  # noqa: F401,F403,E402
from .ctc import *  # noqa: F401,F403,E402
from .optim import *  # noqa: F401,F403,E402
from .mha import *  # noqa: F401,F403,E402
from . import core as _core, nn as _nn, conv as _conv, norm as _norm, rnn as _rnn, gather as _gather  # noqa: E402
from . import ctc as _ctc, optim as _optim  # noqa: E402
from . import mha as _mha  # noqa: E402

KERNELS = (tuple(_core.__all__) + tuple(_nn.__all__) + tuple(_conv.__all__) + tuple(_norm.__all__)
           + tuple(_rnn.__all__) + tuple(_gather.__all__) + tuple(_ctc.__all__)
           + tuple(_optim.__all__) + tuple(_mha.__all__))
