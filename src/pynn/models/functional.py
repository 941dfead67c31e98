"""The graph behind a functional ``pynn.Model(inputs, outputs)``: the layer calls
recorded on symbolic tensors, in an order where every call follows its inputs.
A layer called twice (shared weights) appears as two calls of one layer."""
from ..layers.input_layer import KerasTensor, substitute


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


class FunctionalGraph:
    def __init__(self, inputs, outputs, model_name):
        self.inputs = _as_list(inputs)
        self.outputs = _as_list(outputs)
        self.single_output = not isinstance(outputs, (list, tuple))
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
        layers, seen = [], set()
        for t in self.order:
            if id(t.layer) not in seen:
                seen.add(id(t.layer))
                layers.append(t.layer)
        self.layers = layers

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
        return outs[0] if self.single_output else outs
