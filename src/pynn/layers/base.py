"""The Layer base class (Keras-shaped): settings in ``__init__``, weights
created in ``build(input_shape)`` by ``add_weight``, computation in ``call``
using only ``pynn.functional``."""
from __future__ import annotations

import inspect
import threading

import numpy as np

from .. import _weights_epoch, initializers
from ..autograd import Tensor
from ..utils.registry import register_builtin
from .input_layer import KerasTensor, Node, is_shape_list, is_symbolic, substitute, symbolic_leaves
from .naming import snake_case, unique_name  # noqa: F401  (unique_name: layers.base's public helper)

# Float dtypes a layer's weights and computation can have (float32 native, float64 for the
# numpy backend's gradient checks).
_LAYER_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# How deep inside layer calls we are: losses added with add_loss() are cleared
# when an outermost call starts (Keras: each forward pass collects its own).
_call_state = threading.local()


def _enter_call(layer):
    depth = getattr(_call_state, "depth", 0)
    if depth == 0:
        layer._clear_call_losses()
    _call_state.depth = depth + 1


def _exit_call():
    _call_state.depth -= 1


class Variable(Tensor):
    """A trainable weight: a Tensor with a name, a trainable flag and optional
    regularizer/constraint. The optimizer updates ``data`` in place.

    Example:
        >>> v = pynn.layers.Variable(np.zeros((2, 3), np.float32), name="v")
        >>> v.assign(np.ones((2, 3), np.float32))
        >>> v.shape, float(v.numpy().sum())
        ((2, 3), 6.0)
    """

    __slots__ = ("trainable", "regularizer", "constraint")

    def __init__(self, value, name=None, trainable=True, regularizer=None, constraint=None):
        value = np.asarray(value)
        if not value.flags.c_contiguous:   # (np.ascontiguousarray would turn a scalar weight into shape (1,))
            value = np.ascontiguousarray(value)
        super().__init__(value, requires_grad=trainable, name=name)
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def value(self):
        """The variable as a Tensor: Keras' ``variable.value`` (the backend tensor, e.g. in a
        torch-style ``train_step``: ``grads = [v.value.grad for v in self.trainable_weights]``).
        A pynn Variable is itself the Tensor, so this is ``self``."""
        return self

    def assign(self, value):
        value = np.asarray(value, dtype=self.data.dtype)
        if value.shape != self.data.shape:
            raise ValueError(f"Variable {self.name!r}: expected shape {self.data.shape}, got {value.shape}")
        _weights_epoch.bump()   # inference plans holding derived copies rebuild (and release the array)
        self.data[...] = value


def unique_weights(groups):
    """Concatenate weight lists, keeping the first occurrence of each (shared layers)."""
    seen, out = set(), []
    for group in groups:
        for w in group:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
    return out


def assign_weights(owner, variables, values):
    """Set every variable from ``values`` after checking all the shapes: never half-set."""
    values = list(values)
    if len(values) != len(variables):
        raise ValueError(f"{owner}: set_weights expected {len(variables)} arrays "
                         f"{[w.shape for w in variables]}, got {len(values)}")
    for w, value in zip(variables, values):
        kind = np.asarray(value).dtype.kind
        if kind not in "biuf":  # complex would be cast with only a ComplexWarning: its imaginary part lost
            raise TypeError(f"{owner}: weight {w.name!r} must be a real array, got dtype {np.asarray(value).dtype}")
        if np.shape(value) != w.shape:
            raise ValueError(f"{owner}: weight {w.name!r} has shape {w.shape}, got an array of shape {np.shape(value)}")
    for w, value in zip(variables, values):
        w.assign(value)


def _real(layer, x):
    """A layer's array input: complex (and object/str) arrays are a TypeError naming the layer."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{layer.name}: expected a real numeric input, got dtype {x.dtype}")
    return x

_NO_LAYERS = ()


def _may_hold_layers(value):
    """A Layer, or a list/dict that holds one or is empty (a container filled later):
    the attribute values a layer tracks. Shapes, caches and lists of other things
    are not walked on every weights lookup."""
    if isinstance(value, Layer):
        return True
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, (list, tuple)):
        return False
    if not value:
        return not isinstance(value, tuple)
    return any(_may_hold_layers(v) for v in value)


def _keras_add_weight(shape=None, initializer=None, dtype=None, trainable=True, regularizer=None, constraint=None,
                      name=None):
    pass


def _legacy_add_weight(name, shape, initializer="glorot_uniform", regularizer=None, constraint=None, trainable=True,
                       dtype=None):
    pass


def _bind(signature_of, args, kwargs):
    """The arguments of an add_weight call bound by ``signature_of``'s signature (a TypeError
    names what does not fit)."""
    try:
        bound = inspect.signature(signature_of).bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"add_weight: {e}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def _shape_tuple(shape):
    return tuple(None if d is None else int(d) for d in shape)


class Layer:
    """Base class of all layers; subclass and override ``build``, ``call`` and
    ``compute_output_shape`` (and ``get_config`` for saving).

    Example:
        >>> class Scale(pynn.layers.Layer):
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
        ...     def call(self, x):
        ...         return x * self.w
        ...
        >>> layer = Scale()
        >>> layer(np.ones((2, 3), np.float32)).shape
        (2, 3)
        >>> [w.shape for w in layer.weights]
        [(3,)]
    """

    # Layers that keep the (batch, steps) structure pass a padding mask through.
    supports_masking = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("pynn."):   # pynn's own classes load by name; custom ones register
            register_builtin(cls)

    def __init__(self, trainable=True, name=None, dtype="float32", input_shape=None, batch_size=None,
                 batch_input_shape=None, activity_regularizer=None, **kwargs):
        if batch_input_shape is not None:  # Keras' (batch, ...) form of input_shape + batch_size
            batch_size, input_shape = batch_input_shape[0], tuple(batch_input_shape[1:])
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = trainable
        self.dtype = np.dtype(dtype)
        if self.dtype not in _LAYER_DTYPES:  # an int8/bool/object layer would silently truncate its weights
            raise ValueError(f"{type(self).__name__}: dtype must be one of {sorted(d.name for d in _LAYER_DTYPES)}, "
                             f"got {self.dtype.name!r}")
        self.built = False
        self._weights: list[Variable] = []
        self._input_shape = _shape_tuple((batch_size,) + tuple(input_shape)) if input_shape is not None else None
        self._accepts_training = "training" in inspect.signature(self.call).parameters
        from .. import regularizers
        self.activity_regularizer = regularizers.get(activity_regularizer)

    # ------------------------------------------------------------ tracking
    def __setattr__(self, name, value):
        # Keras 3 tracks what a layer holds: sub-layers, weights and lists/dicts of
        # them assigned as attributes, so a layer built from layers trains, saves
        # and counts its inner weights. The attribute names are recorded here; the
        # values are read when asked (a list appended to later is seen too).
        if type(value) is Variable and name != "_weights":
            weights = self.__dict__.get("_weights")
            if weights is not None and all(w is not value for w in weights):
                weights.append(value)
        elif name not in ("_weights", "_tracked_attrs") and _may_hold_layers(value):
            tracked = self.__dict__.get("_tracked_attrs")
            if tracked is None:
                tracked = {}
                object.__setattr__(self, "_tracked_attrs", tracked)
            tracked[name] = None
        object.__setattr__(self, name, value)

    def _flatten_layers(self):
        """The layers held as attributes (directly or in lists/tuples/dicts), in
        assignment order, each once; not recursive. Called on every weights
        lookup, so a layer that holds none returns at once without allocating."""
        tracked = self.__dict__.get("_tracked_attrs")
        if not tracked:
            return _NO_LAYERS
        out, seen, stack = [], {id(self)}, [self.__dict__.get(name) for name in reversed(tracked)]
        while stack:
            v = stack.pop()
            if isinstance(v, Layer):
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
            elif isinstance(v, (list, tuple)):
                stack.extend(reversed(v))
            elif isinstance(v, dict):
                stack.extend(reversed(list(v.values())))
        return out

    # ------------------------------------------------------------ weights
    def add_weight(self, *args, **kwargs) -> Variable:
        """Create a weight (Keras 3 argument order): ``add_weight(shape=None,
        initializer=None, dtype=None, trainable=True, regularizer=None,
        constraint=None, name=None)``. ``shape`` defaults to a scalar ``()``;
        ``initializer`` (name, callable or Initializer) to ``"glorot_uniform"`` for
        floats and ``"zeros"`` otherwise, as Keras.

        Example: ``self.w = self.add_weight(shape=(d, units), initializer="random_normal")``.
        """
        if args and isinstance(args[0], str):
            # pynn's earlier order add_weight(name, shape, initializer, regularizer, constraint,
            # trainable, dtype), still used inside pynn: a string is never a shape, so the
            # call is unambiguous.
            return self._add_weight(**_bind(_legacy_add_weight, args, kwargs))
        return self._add_weight(**_bind(_keras_add_weight, args, kwargs))

    def _add_weight(self, shape, initializer, dtype, trainable, regularizer, constraint, name) -> Variable:
        shape = () if shape is None else ((shape,) if isinstance(shape, (int, np.integer)) else tuple(shape))
        if any(d is None for d in shape):
            raise ValueError(f"{type(self).__name__} {self.name!r}.add_weight: shape {shape} has an unknown "
                             "dimension; create weights in build(input_shape), where the shape is known")
        dtype = np.dtype(dtype or self.dtype)
        if initializer is None:
            initializer = "glorot_uniform" if dtype.kind == "f" else "zeros"
        if name is None:  # Keras' default names: variable, variable_1, ...
            n = len(self._weights)
            name = "variable" if n == 0 else f"variable_{n}"
        value = initializers.get(initializer)(shape, dtype=dtype)
        v = Variable(value, name=f"{self.name}/{name}", trainable=trainable,
                     regularizer=regularizer, constraint=constraint)
        v.requires_grad = trainable and self._trainable
        self._weights.append(v)
        return v

    add_weight.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + list(inspect.signature(_keras_add_weight).parameters.values()))

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freezing a layer stops its weights, and its sub-layers', from receiving
        gradients (transfer learning); Keras sets every sub-layer's flag too."""
        self._trainable = bool(value)
        _weights_epoch.bump()
        for w in self._weights:
            w.requires_grad = self._trainable and w.trainable
        for layer in self._flatten_layers():
            layer.trainable = value

    def _own_weights(self):
        # Keras 3 lists a layer's own trainable variables, then its non-trainable ones.
        if all(w.trainable for w in self._weights):
            return list(self._weights)
        return [w for w in self._weights if w.trainable] + [w for w in self._weights if not w.trainable]

    @property
    def weights(self):
        """Own weights (trainable first, as Keras), then every sub-layer's, each once."""
        sub = self._flatten_layers()
        if not sub:   # the common case (Dense, Conv2D...): no sub-layers to merge
            return self._own_weights()
        return unique_weights([self._own_weights()] + [layer.weights for layer in sub])

    @property
    def trainable_weights(self):
        if not self._trainable:
            return []
        sub = self._flatten_layers()
        if not sub:
            return [w for w in self._weights if w.trainable]
        return unique_weights([[w for w in self._weights if w.trainable]]
                              + [layer.trainable_weights for layer in sub])

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    # Keras 3 names for the same lists.
    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    @property
    def losses(self):
        """Scalar Tensors added to the training loss: the losses the last forward
        pass added with ``add_loss`` (here and in sub-layers), then the weights'
        regularization penalties (Keras' ``layer.losses``)."""
        return self._collect_call_losses() + [w.regularizer(w) for w in self.trainable_weights
                                              if getattr(w, "regularizer", None) is not None]

    def add_loss(self, loss):
        """Add a scalar loss Tensor computed in ``call`` (an activity penalty, a KL
        term); ``fit``/``compute_loss`` add it to the loss of that forward pass."""
        if isinstance(loss, KerasTensor):
            raise NotImplementedError(f"Layer {self.name!r}: add_loss on a symbolic tensor is not supported; "
                                      "call add_loss inside call() on real tensors")
        if not isinstance(loss, Tensor):
            loss = Tensor(np.asarray(loss, np.float32))
        if loss.size != 1:
            raise ValueError(f"Layer {self.name!r}: add_loss expects a scalar, got shape {tuple(loss.shape)}")
        self.__dict__.setdefault("_call_losses", []).append(loss)

    def _loss_children(self):
        return self._flatten_layers()

    def _collect_call_losses(self):
        out = list(self.__dict__.get("_call_losses", ()))
        for layer in self._loss_children():
            out += layer._collect_call_losses()
        return out

    def _clear_call_losses(self):
        self.__dict__.pop("_call_losses", None)
        for layer in self._loss_children():
            layer._clear_call_losses()

    def get_weights(self):
        """Copies of the weights, in Keras order (e.g. Dense: [kernel, bias])."""
        return [w.data.copy() for w in self.weights]

    def set_weights(self, weights):
        assign_weights(f"Layer {self.name!r}", self.weights, weights)

    def count_params(self):
        """Number of weight elements; like Keras, an unbuilt layer raises."""
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer {self.name!r}, but the layer isn't "
                             "built. You can build it manually via: `layer.build(batch_input_shape)`.")
        return int(sum(w.size for w in self.weights))

    # ------------------------------------------------------------ calling
    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        """Output shape(s) for ``input_shape``. Override it when the output shape
        is known without computing; by default the functional API learns it by
        calling the layer (see ``_symbolic_output_shape``)."""
        return self._probe_output_shape(input_shape)[0]

    def _overrides_output_shape(self):
        return type(self).compute_output_shape is not Layer.compute_output_shape

    def _symbolic_output_shape(self, inputs, shapes, kwargs):
        """(shape or list of shapes, dtype or None) of calling this layer on the symbolic ``inputs``.

        A layer that defines ``compute_output_shape`` is asked; any other one is
        called, as Keras 3 traces ``call``: here on batches of zeros (each unknown
        dimension tried at two sizes, so a dimension that follows the input stays
        ``None``). Nothing assumes the output has the input's shape."""
        if self._overrides_output_shape():
            return self.compute_output_shape(shapes), None
        return self._probe_output_shape(shapes, inputs, kwargs)

    def _probe_output_shape(self, input_shape, inputs=None, kwargs=None):
        from ..autograd import no_grad
        if inputs is None:  # compute_output_shape called directly: float inputs of that shape
            multi = isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list))
            inputs = [KerasTensor(s) for s in input_shape] if multi else KerasTensor(input_shape)
        kwargs = kwargs or {}
        leaves = symbolic_leaves(inputs) + [t for v in kwargs.values() for t in symbolic_leaves(v)]
        results = []
        # Two sizes for each unknown dimension; output dims that differ are unknown.
        # The batch is kept small (2, 3); other unknown dims (steps, pixels) get
        # sizes a kernel or a stride still fits in.
        for batch, size in ((2, 8), (3, 13)):
            env = {}
            for t in leaves:
                shape = tuple(d if d is not None else (batch if i == 0 else size) for i, d in enumerate(t.shape))
                env[id(t)] = Tensor(np.zeros(shape, dtype=t.dtype))
            try:
                with no_grad():
                    out = self.call(substitute(inputs, env), **({"training": False} if self._accepts_training
                                                                  else {}), **substitute(kwargs, env))
            except Exception as e:
                raise ValueError(f"Layer {self.name!r} ({type(self).__name__}): could not infer its output shape "
                                 f"by calling it on zeros of shape {[tuple(env[id(t)].shape) for t in leaves]} "
                                 f"({type(e).__name__}: {e}); define compute_output_shape(input_shape)") from e
            results.append(out)
        first, second = results
        if isinstance(first, (list, tuple)):
            shapes = [self._merge_probe_shapes(a, b) for a, b in zip(first, second)]
            return shapes, np.dtype(first[0].dtype)
        return self._merge_probe_shapes(first, second), np.dtype(first.dtype)

    @staticmethod
    def _merge_probe_shapes(a, b):
        if isinstance(a, dict) or not hasattr(a, "shape"):
            raise ValueError(f"layer output of type {type(a).__name__} is not supported in a functional model")
        return tuple(None if x != y else int(x) for x, y in zip(a.shape, b.shape))

    def __call__(self, inputs, training=False, **kwargs):
        if is_symbolic(inputs):
            # Functional API: build from the shape, record the call (with its keyword
            # arguments, which may hold symbolic tensors too), compute nothing.
            shapes = [t.shape for t in inputs] if isinstance(inputs, (list, tuple)) else inputs.shape
            if not self.built:
                self.build(shapes)
                self.built = True
            dtype = self._output_dtype((inputs[0] if isinstance(inputs, (list, tuple)) else inputs).dtype)
            parents = list(inputs) if isinstance(inputs, (list, tuple)) else inputs
            node = Node(self, parents, kwargs)
            out_shape, probed_dtype = self._symbolic_output_shape(inputs, shapes, kwargs)
            dtype = probed_dtype or dtype
            if is_shape_list(out_shape):   # e.g. LSTM(return_state=True): [output, h, c]
                result = [KerasTensor(s, dtype, self, parents, node=node, index=i) for i, s in enumerate(out_shape)]
            else:
                result = KerasTensor(out_shape, dtype, self, parents, node=node)
            if "_first_call" not in self.__dict__:   # layer.input / layer.output (Keras: the first call's)
                self._first_call = (inputs, result)
            return result
        if isinstance(inputs, (list, tuple)):
            inputs = [t if isinstance(t, Tensor) else Tensor(_real(self, t)) for t in inputs]
            shapes = [_shape_tuple(t.shape) for t in inputs]
        else:
            if not isinstance(inputs, Tensor):
                inputs = Tensor(_real(self, inputs))
            shapes = _shape_tuple(inputs.shape)
        if not self.built:
            self.build(shapes)
            self.built = True
        _enter_call(self)
        try:
            out = self.call(inputs, training=training, **kwargs) if self._accepts_training else \
                self.call(inputs, **kwargs)
            if self.activity_regularizer is not None and isinstance(out, Tensor):
                penalty = self.activity_regularizer(out)
                if out.ndim > 0 and out.shape[0] > 0:   # Keras 3: per sample, so batch size doesn't change it
                    penalty = penalty * (1.0 / out.shape[0])
                self.add_loss(penalty)
        finally:
            _exit_call()
        mask = getattr(inputs, "_keras_mask", None)
        if mask is not None and self.supports_masking and isinstance(out, Tensor) and out._keras_mask is None \
                and out.shape[:mask.ndim] == mask.shape:
            out._keras_mask = mask
        return out

    @property
    def input(self):
        """The symbolic input of this layer's first functional call (Keras' ``layer.input``)."""
        return self._first_symbolic_call()[0]

    @property
    def output(self):
        """The symbolic output of this layer's first functional call (Keras' ``layer.output``):
        ``pynn.Model(model.input, model.get_layer("dense").output)`` builds a feature extractor."""
        return self._first_symbolic_call()[1]

    def _first_symbolic_call(self):
        call = self.__dict__.get("_first_call")
        if call is None:
            raise AttributeError(f"Layer {self.name!r} has never been called on a symbolic input "
                                 "(pynn.Input), so it has no input/output tensors")
        return call

    def _output_dtype(self, input_dtype):
        return self.dtype

    # ------------------------------------------------------------ config
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self.activity_regularizer is not None:
            from .. import regularizers
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if self._input_shape is not None:
            config["input_shape"] = list(self._input_shape[1:])
            if self._input_shape[0] is not None:
                config["batch_size"] = self._input_shape[0]
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
