"""``plot_model``: a model's graph as Graphviz DOT text, rendered to an image by
Graphviz's ``dot`` program when it is installed (Keras' ``plot_model``)."""
import os
import shutil
import subprocess


def _label(text):
    return text.replace('"', '\\"')


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB"):
    """The DOT source (a str) of a Sequential or functional model: one box per
    input and layer, an edge per connection.

    Args:
        model: a Sequential or functional model (built).
        show_shapes / show_dtype / show_layer_names: what each box shows.
        rankdir: "TB" (top to bottom) or "LR" (left to right).

    Returns:
        The DOT source, a str.

    Example:
        >>> model = pynn.Sequential([pynn.Input((3,), name="x"), pynn.layers.Dense(2, name="d")], name="m")
        >>> print(pynn.utils.model_to_dot(model))
        digraph "m" {
          rankdir=TB;
          node [shape=record];
          n0 [label="x (InputLayer)"];
          n1 [label="d (Dense)"];
          n0 -> n1;
        }
    """
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"plot_model: rankdir must be 'TB' or 'LR', got {rankdir!r}")
    nodes, edges = {}, []

    def describe(name, kind, shape=None, dtype=None):
        text = f"{name} ({kind})" if show_layer_names else kind
        if show_shapes and shape is not None:
            text += f"\\noutput: {shape}"
        if show_dtype and dtype is not None:
            text += f"\\ndtype: {dtype}"
        return text

    graph = getattr(model, "_graph", None)
    if graph is not None:
        for i, t in enumerate(graph.inputs):
            nodes[id(t)] = describe(graph.input_names[i], "InputLayer", t.shape, t.dtype.name)
        for t in graph.order:
            nodes.setdefault(id(t.layer), describe(t.layer.name, type(t.layer).__name__, t.shape, t.dtype.name))
            for p in t.node.dependencies():
                src = id(p) if p.layer is None else id(p.layer)
                if (src, id(t.layer)) not in edges:
                    edges.append((src, id(t.layer)))
    elif hasattr(model, "_layers"):   # Sequential
        if not model.built:
            raise ValueError(f"plot_model: Sequential {model.name!r} is not built; give it an Input or call it once")
        prev, shape = None, model._build_input_shape
        if model._input is not None:
            prev = id(model._input)
            nodes[prev] = describe(model._input.name, "InputLayer", model._input.shape, model._input.dtype.name)
        for layer in model.layers:
            shape = layer.compute_output_shape(shape)
            nodes[id(layer)] = describe(layer.name, type(layer).__name__, shape, layer.dtype.name)
            if prev is not None:
                edges.append((prev, id(layer)))
            prev = id(layer)
    else:
        raise ValueError(f"plot_model: {type(model).__name__} is a subclassed model: its graph is Python code; "
                         "build it with the functional API to plot it")
    lines = [f'digraph "{_label(model.name)}" {{', f"  rankdir={rankdir};", "  node [shape=record];"]
    index = {key: i for i, key in enumerate(nodes)}
    lines += [f'  n{index[k]} [label="{_label(v)}"];' for k, v in nodes.items()]
    lines += [f"  n{index[a]} -> n{index[b]};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
               expand_nested=False, dpi=200):
    """Draw ``model`` to ``to_file``: ``.dot`` writes the Graphviz source (no
    dependency); other extensions (png, svg, pdf...) run Graphviz's ``dot``, and
    raise a clear error when it is not installed. Returns ``to_file``.

    Args:
        model: a Sequential or functional model (built).
        to_file: the output file; its extension picks the format.
        show_shapes, show_dtype, show_layer_names, rankdir: as for ``model_to_dot``.
        expand_nested: not supported (raises when True).
        dpi: resolution of a rendered image.

    Example:
        >>> model = pynn.Sequential([pynn.Input((3,)), pynn.layers.Dense(2)], name="m")
        >>> pynn.utils.plot_model(model, to_file="model.dot")
        'model.dot'
        >>> print(open("model.dot").read().splitlines()[0])
        digraph "m" {
        >>> pynn.utils.plot_model(model, to_file="model.png")  # doctest: +SKIP
        'model.png'
    """
    if expand_nested:
        raise ValueError("plot_model: expand_nested=True is not supported; nested models are drawn as one box")
    source = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir)
    to_file = os.fspath(to_file)
    ext = os.path.splitext(to_file)[1].lstrip(".").lower() or "png"
    if ext == "dot":
        with open(to_file, "w") as f:
            f.write(source)
        return to_file
    dot = shutil.which("dot")
    if dot is None:
        raise ImportError(f"plot_model: writing a .{ext} needs Graphviz's `dot` program (apt install graphviz); "
                          "it is not installed. Pass to_file='model.dot' for the Graphviz source instead.")
    subprocess.run([dot, f"-T{ext}", f"-Gdpi={int(dpi)}", "-o", to_file], input=source.encode(), check=True)
    return to_file
