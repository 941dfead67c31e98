"""A Keras-style progress bar: ``12/28 [=====>......] - ETA: 1s - loss: 0.31``.

Redrawn in place on a terminal; on a pipe or log file only the final line of
each epoch is written, so logs stay readable.
"""
import sys
import time


def _fmt_time(seconds):
    if seconds >= 3600:
        return f"{seconds // 3600:.0f}:{(seconds % 3600) // 60:02.0f}:{seconds % 60:02.0f}"
    if seconds >= 60:
        return f"{seconds // 60:.0f}:{seconds % 60:02.0f}"
    return f"{seconds:.0f}s"


def _fmt_value(v):
    """A log value: a number to 4 decimals; an array (e.g. F1Score(average=None)) element-wise."""
    if hasattr(v, "__len__"):
        return "[" + " ".join(f"{float(x):.4f}" for x in v) + "]"
    return f"{v:.4f}"


class Progbar:
    def __init__(self, target, width=30, verbose=1, stream=None, interval=0.05):
        self.target, self.width, self.verbose = target, width, verbose
        self.stream = stream or sys.stdout
        self.dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def due(self):
        """True when a non-final ``update`` now would redraw (fit skips building the logs otherwise)."""
        return self.verbose == 1 and self.dynamic and time.perf_counter() - self._last_draw >= self.interval

    def update(self, current, values=(), finalize=None):
        """Show step ``current`` of ``target`` with ``values`` [(name, number), ...]."""
        if finalize is None:
            finalize = current >= self.target
        now = time.perf_counter()
        if self.verbose != 1 and not finalize:
            return
        if not finalize and (not self.dynamic or now - self._last_draw < self.interval):
            return
        self._last_draw = now
        elapsed = now - self.start
        metrics = "".join(f" - {k}: {_fmt_value(v)}" for k, v in values)
        if finalize:
            per_step = elapsed / max(current, 1)
            unit = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else f"{per_step * 1e6:.0f}us/step"
            timing = f" - {_fmt_time(elapsed)} {unit}"
        else:
            eta = elapsed / max(current, 1) * (self.target - current)
            timing = f" - ETA: {_fmt_time(eta)}"
        if self.verbose == 1:
            n = len(str(self.target))
            done = int(self.width * current / max(self.target, 1))
            bar = "=" * done + (">" if done < self.width else "") + "." * max(self.width - done - 1, 0)
            line = f"{current:{n}d}/{self.target} [{bar}]{timing}{metrics}"
        else:
            line = f"{current}/{self.target}{timing}{metrics}"
        if self.dynamic:
            self.stream.write("\r" + line + ("\n" if finalize else "\033[K"))
        elif finalize:
            self.stream.write(line + "\n")
        self.stream.flush()
