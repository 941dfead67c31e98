"""The graph behind a functional ``pynn.Model(inputs, outputs)``: the layer calls
recorded on symbolic tensors, in an order where every call follows its inputs.
A layer called twice (shared weights) appears as two calls of one layer."""
from ..layers.input_layer import KerasTensor, substitute


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


class FunctionalGraph:
    def __init__(self, inputs, outputs, model_name):
        # Dicts name the inputs/outputs by their keys (Keras: fit/predict then take
        # and return dicts keyed the same way); otherwise the Input's name and the
        # name of the layer that produced each output.
        self.input_dict = isinstance(inputs, dict)
        self.output_dict = isinstance(outputs, dict)
        # Keras flattens a dict in sorted key order (keras.tree), so its layer order,
        # weights order and output order follow the sorted names: so do these.
        if self.input_dict:
            inputs = {k: inputs[k] for k in sorted(inputs)}
        if self.output_dict:
            outputs = {k: outputs[k] for k in sorted(outputs)}
        self.inputs = list(inputs.values()) if self.input_dict else _as_list(inputs)
        self.outputs = list(outputs.values()) if self.output_dict else _as_list(outputs)
        self.single_output = not isinstance(outputs, (list, tuple, dict))
        self.input_names = list(inputs) if self.input_dict else [t.name for t in self.inputs]
        if self.output_dict:
            self.output_names = list(outputs)
        else:
            names, seen = [], {}
            for t in self.outputs:   # several outputs of one layer: name, name_1, ...
                base = t.layer.name if t.layer is not None else t.name
                seen[base] = seen.get(base, -1) + 1
                names.append(base if seen[base] == 0 else f"{base}_{seen[base]}")
            self.output_names = names
        if len(set(self.input_names)) != len(self.input_names):
            raise ValueError(f"Model {model_name!r}: input names must be unique, got {self.input_names}; "
                             "name them with Input(name=...) or pass a dict")
        for t in self.inputs + self.outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model {model_name!r}: inputs and outputs must be symbolic tensors from "
                                f"pynn.Input(...) and layer calls, got {type(t).__name__}")
        for t in self.inputs:
            if t.layer is not None:
                raise ValueError(f"Model {model_name!r}: inputs must be pynn.Input tensors, got the output of "
                                 f"{t.layer.name!r}")
        self.input_shapes = [t.shape for t in self.inputs]
        self.order = self._topological(model_name)
        self.layers = self._keras_layer_order()

    def _keras_layer_order(self):
        """The layers in Keras 3's order (keras/src/ops/function.py map_graph): by
        depth from the outputs, deepest first; ties in first-visit order of a
        depth-first walk from the outputs. ``model.weights`` follows it, so
        ``set_weights(keras_model.get_weights())`` works on branched graphs."""
        input_ids = {id(t) for t in self.inputs}
        visit_index, post_order, finished = {}, [], set()

        def walk(t):   # _build_map_helper: pre-order index per layer, post-order nodes
            if id(t) in input_ids or t.layer is None or id(t.node) in finished:
                return
            visit_index.setdefault(id(t.layer), len(visit_index))
            for p in t.node.dependencies():
                walk(p)
            finished.add(id(t.node))
            post_order.append(t.node)
        for t in self.outputs:
            walk(t)
        producer = {}   # id(tensor) -> node that produced it
        for t in self.order:
            producer[id(t)] = t.node
        node_depth, layer_depth = {}, {}
        for node in reversed(post_order):
            depth = node_depth.setdefault(id(node), 0)
            depth = max(depth, layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = depth
            node_depth[id(node)] = depth
            for p in node.dependencies():
                parent = producer.get(id(p))
                if parent is not None:
                    node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
        by_id = {id(t.layer): t.layer for t in self.order}
        return sorted(by_id.values(), key=lambda layer: (-layer_depth[id(layer)], visit_index[id(layer)]))

    def _topological(self, model_name):
        input_ids = {id(t) for t in self.inputs}
        order, visited = [], set()
        stack = [(t, False) for t in reversed(self.outputs)]
        while stack:
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            if id(t) in visited or id(t) in input_ids:
                continue
            visited.add(id(t))
            if t.layer is None:
                raise ValueError(f"Model {model_name!r}: the outputs depend on an Input {t} that is not among "
                                 "the model's inputs")
            stack.append((t, True))
            for p in reversed(t.node.dependencies()):
                stack.append((p, False))
        return order

    def run(self, inputs, training):
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(f"functional model: the input dict lacks {missing}; inputs are {self.input_names}")
            inputs = [inputs[n] for n in self.input_names]
        values = _as_list(inputs)
        if len(values) != len(self.inputs):
            raise ValueError(f"functional model: expected {len(self.inputs)} inputs, got {len(values)}")
        env = {id(k): v for k, v in zip(self.inputs, values)}
        results = {}   # id(node) -> what the call returned: each call runs once
        for t in self.order:
            node = t.node
            if id(node) not in results:
                args = substitute(node.parents, env)
                results[id(node)] = node.layer(args, training=training, **substitute(node.kwargs, env))
            out = results[id(node)]
            env[id(t)] = out if t.index is None else out[t.index]
        outs = [env[id(t)] for t in self.outputs]
        if self.output_dict:
            return dict(zip(self.output_names, outs))
        return outs[0] if self.single_output else outs
