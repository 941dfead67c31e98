"""einsum with explicit output subscripts, differentiable in every operand.

The gradient of operand i is itself an einsum: the output's cotangent and the
other operands contracted to operand i's subscripts. Letters that appear only
in operand i (summed away in the forward) are absent from that contraction, so
the gradient is computed over the remaining letters and broadcast back.
"""
import numpy as np

from ..autograd import Function
from .registry import register


def parse_subscripts(subscripts, ndims):
    """Split "ij,jk->ik" into (["ij", "jk"], "ik"), expanding "..." to letters not in use.

    An implicit output (no "->") follows NumPy: the letters used once, sorted."""
    s = subscripts.replace(" ", "")
    if "->" in s:
        lhs, out = s.split("->")
    else:
        lhs, out = s, None
    ins = lhs.split(",")
    if len(ins) != len(ndims):
        raise ValueError(f"einsum: {len(ins)} operand subscripts in {subscripts!r} for {len(ndims)} operands")
    used = set(c for c in s if c.isalpha())
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    ell_len = 0
    for sub, nd in zip(ins, ndims):
        if "..." in sub:
            ell_len = max(ell_len, nd - len(sub.replace("...", "")))
    ell = "".join(free[:ell_len])
    expanded = []
    for sub, nd in zip(ins, ndims):
        if "..." in sub:
            n = nd - len(sub.replace("...", ""))
            sub = sub.replace("...", ell[ell_len - n:] if n else "")
        if len(sub) != nd:
            raise ValueError(f"einsum: subscripts {sub!r} do not match an operand with {nd} dimensions")
        expanded.append(sub)
    if out is None:
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return expanded, out


@register("einsum")
class Einsum(Function):
    def forward(self, *operands, subscripts):
        self.ins, self.out = parse_subscripts(subscripts, [np.ndim(o) for o in operands])
        for sub in self.ins + [self.out]:
            if len(set(sub)) != len(sub):
                # A repeated letter inside one operand takes a diagonal; its adjoint would
                # scatter onto that diagonal, which this op does not implement.
                raise ValueError(f"einsum: repeated subscript in {sub!r} is not differentiable here "
                                 f"(subscripts {subscripts!r})")
        self.operands = operands
        return np.asarray(np.einsum(",".join(self.ins) + "->" + self.out, *operands))

    def backward(self, g):
        grads = []
        for i, need in enumerate(self.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            target = self.ins[i]
            others = [(s, o) for j, (s, o) in enumerate(zip(self.ins, self.operands)) if j != i]
            avail = set(self.out).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in target if c in avail)
            gi = np.einsum(",".join([self.out] + [s for s, _ in others]) + "->" + kept,
                           g, *[o for _, o in others])
            shape = np.shape(self.operands[i])
            if kept != target:
                # Letters only in operand i were summed in the forward: their gradient is constant along them.
                gi = np.expand_dims(gi, tuple(k for k, c in enumerate(target) if c not in avail))
                gi = np.broadcast_to(gi, shape)
            grads.append(np.array(gi, dtype=np.result_type(g, *self.operands)))
        return tuple(grads)


def einsum(subscripts, *operands):
    """Differentiable ``np.einsum(subscripts, *operands)`` (explicit or implicit output, "..." allowed)."""
    return Einsum.apply(*operands, subscripts=subscripts)
