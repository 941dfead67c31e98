"""Weight initialisers with Keras names and definitions (fan_in/fan_out as Keras
computes them: for a kernel (..., in, out) the receptive field multiplies both)."""
import numpy as np

from .random import generator


def _fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    def __call__(self, shape, dtype=np.float32):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {}


class Zeros(Initializer):
    def __call__(self, shape, dtype=np.float32):
        return np.zeros(shape, dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype=np.float32):
        return np.ones(shape, dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=np.float32):
        return np.full(shape, self.value, dtype)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=np.float32):
        return generator().normal(self.mean, self.stddev, shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=np.float32):
        return generator().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class VarianceScaling(Initializer):
    """Keras VarianceScaling: variance = scale / n (n = fan_in, fan_out or their mean)."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype=np.float32):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        rng = generator()
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * var)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        if self.distribution == "truncated_normal":
            std = np.sqrt(var) / 0.87962566103423978  # std of a unit normal truncated to ±2
            x = rng.normal(0.0, 1.0, shape)
            bad = np.abs(x) > 2
            while bad.any():
                x[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
                bad = np.abs(x) > 2
            return (x * std).astype(dtype)
        return rng.normal(0.0, np.sqrt(var), shape).astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class GlorotUniform(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_avg", "uniform")

    def get_config(self):
        return {}


class GlorotNormal(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_avg", "truncated_normal")

    def get_config(self):
        return {}


class HeNormal(VarianceScaling):
    def __init__(self):
        super().__init__(2.0, "fan_in", "truncated_normal")

    def get_config(self):
        return {}


class HeUniform(VarianceScaling):
    def __init__(self):
        super().__init__(2.0, "fan_in", "uniform")

    def get_config(self):
        return {}


class Orthogonal(Initializer):
    """A (scaled) random orthogonal matrix: QR of a Gaussian matrix, signs fixed so
    the distribution is uniform (Keras' default for recurrent kernels)."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=np.float32):
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = generator().normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class LecunNormal(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_in", "truncated_normal")

    def get_config(self):
        return {}


class LecunUniform(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_in", "uniform")

    def get_config(self):
        return {}


class TruncatedNormal(Initializer):
    """Keras TruncatedNormal(mean=0.0, stddev=0.05): a normal with values more than
    two standard deviations from the mean redrawn."""

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=np.float32):
        rng = generator()
        x = rng.normal(0.0, 1.0, shape)
        bad = np.abs(x) > 2
        while bad.any():
            x[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
            bad = np.abs(x) > 2
        return (self.mean + self.stddev * x).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_normal": HeNormal, "he_uniform": HeUniform, "orthogonal": Orthogonal,
    "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform, "truncated_normal": TruncatedNormal,
}
# Keras' other spellings: its short aliases and the class names ("GlorotUniform").
# Added after the canonical names so serialize() still writes those.
_BY_NAME.update({"uniform": RandomUniform, "normal": RandomNormal})
_BY_NAME.update({cls.__name__: cls for cls in list(_BY_NAME.values())})


def get(identifier):
    """An initializer from a name, a config dict, an instance or a callable.

    Args:
        identifier: a name ("glorot_uniform", "ones" ...), a {"class_name", "config"}
            dict, an Initializer or a callable.

    Returns:
        An Initializer (a callable ``init(shape, dtype)``). Raises ValueError otherwise.

    Example:
        >>> print(pynn.initializers.get("ones")((2, 2)))
        [[1. 1.]
         [1. 1.]]
        >>> type(pynn.initializers.get({"class_name": "Constant", "config": {"value": 3.0}})).__name__
        'Constant'
    """
    if isinstance(identifier, Initializer) or callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return _BY_NAME[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(f"Unknown initializer {identifier!r}; expected one of "
                     f"{sorted(k for k in _BY_NAME if k.islower())}")


def serialize(init):
    """An initializer's name and config (what saved models hold).

    Args:
        init: one of pynn's Initializers.

    Returns:
        {"class_name": its name, "config": its config}, which ``get`` reads back.

    Example:
        >>> pynn.initializers.serialize(pynn.initializers.get("he_normal"))
        {'class_name': 'he_normal', 'config': {}}
    """
    for name, cls in _BY_NAME.items():
        if type(init) is cls:
            return {"class_name": name, "config": init.get_config()}
    raise ValueError(f"Cannot serialize initializer {init!r}")
