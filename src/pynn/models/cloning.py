"""``clone_model`` and ``model_from_json``: a model's architecture without its weights."""
import json


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with ``model``'s architecture and freshly initialised weights
    (Keras: weights are not shared and not copied; call ``set_weights`` for that).

    Works for Sequential and functional models and for subclassed ones that
    define ``get_config``. ``input_tensors``/``clone_function`` are not supported
    and raise.

    Args:
        model: the model to copy.
        input_tensors, clone_function: not supported (must be None).

    Returns:
        A new, unshared model of the same architecture.

    Example:
        >>> model = pynn.Sequential([pynn.Input((3,)), pynn.layers.Dense(2)])
        >>> clone = pynn.models.clone_model(model)
        >>> clone is model, [w.shape for w in clone.weights]
        (False, [(3, 2), (2,)])
    """
    if input_tensors is not None or clone_function is not None:
        raise NotImplementedError("clone_model: input_tensors and clone_function are not supported; rebuild the "
                                  "model with the functional API instead")
    from ..utils.registry import deserialize_layer, serialize_layer
    return deserialize_layer(json.loads(json.dumps(serialize_layer(model))))


def model_from_json(json_string, custom_objects=None):
    """Rebuild a model (fresh weights) from ``model.to_json()``.

    ``custom_objects``: {class name: class} for custom layers not registered with
    ``@pynn.saving.register_keras_serializable`` (they are registered by this call).

    Args:
        json_string: ``model.to_json()``'s output.
        custom_objects: as above.

    Returns:
        The model, with freshly initialised weights.

    Example:
        >>> model = pynn.Sequential([pynn.Input((3,)), pynn.layers.Dense(2)])
        >>> rebuilt = pynn.models.model_from_json(model.to_json())
        >>> type(rebuilt).__name__, [w.shape for w in rebuilt.weights]
        ('Sequential', [(3, 2), (2,)])
    """
    from ..utils.registry import deserialize_layer, register_serializable
    for name, cls in (custom_objects or {}).items():
        register_serializable(cls, name=name)   # registered for later loads too
    return deserialize_layer(json.loads(json_string))
