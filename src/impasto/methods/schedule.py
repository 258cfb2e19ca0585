"""How an optimization proceeds: the ladder of scales it climbs, the optimizer that takes
each step, and the moving average of the iterates it shows."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import OptionError
from ..options import OptimizeOptions
from .lbfgs import LBFGS

MAX_SCALES = 32  # a ladder longer than this is a mistake (a tiny --scale-step)


def scale_ladder(opts: OptimizeOptions) -> list[int]:
    """The sizes, coarse to fine: `scales`, or `size` divided by `scale_step` down to
    `min_scale`."""
    if opts.scales:
        return [int(s) for s in opts.scales]
    ladder = [opts.size]
    while round(ladder[0] / opts.scale_step) >= opts.min_scale:
        ladder.insert(0, round(ladder[0] / opts.scale_step))
        if len(ladder) > MAX_SCALES:
            raise OptionError(f"more than {MAX_SCALES} scales: raise scale_step or min_scale")
    return ladder


def iterations_per_scale(opts: OptimizeOptions) -> list[int]:
    n = len(scale_ladder(opts))
    if isinstance(opts.iterations, int):
        return [opts.iterations] * n
    its = [int(i) for i in opts.iterations]
    if len(its) == 1:
        return its * n
    if len(its) != n:
        raise OptionError(f"iterations lists {len(its)} numbers for {n} scales")
    return its


class Average:
    """Bias-corrected exponential moving average of the iterates, as Adam's moments are."""

    def __init__(self, decay: float):
        self.decay, self.total, self.weight = decay, None, 0.0

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        if self.total is None:
            self.total = torch.zeros_like(x)
        self.total.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)
        self.weight = self.weight * self.decay + (1 - self.decay)

    def value(self) -> torch.Tensor:
        return self.total / self.weight


class Optimizer:
    """One iteration per call: evaluates the loss once, updates `x`, returns the losses.
    `previous`, the last scale's optimizer, warm-starts Adam: its moments, resized to
    `x`, so the new scale neither restarts Adam's bias correction nor its step sizes."""

    def __init__(self, x: torch.Tensor, opts: OptimizeOptions, previous: Optimizer | None = None):
        self.x, self.lbfgs = x, opts.optimizer == "lbfgs"
        if self.lbfgs:
            self.optim = LBFGS(x, history=opts.history, first_step=opts.lr or 0.01)
            return
        self.optim = torch.optim.Adam([x], lr=opts.lr or 0.02, betas=(0.9, 0.99))
        old = previous.optim.state.get(previous.x) if previous is not None else None
        if old:
            size = x.shape[-2:]
            self.optim.state[x] = {
                "step": old["step"].clone(),
                "exp_avg": F.interpolate(old["exp_avg"], size, mode="bicubic"),
                "exp_avg_sq": F.interpolate(old["exp_avg_sq"], size, mode="bilinear").relu_(),
            }

    def __call__(self, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, float]:
        values = {}

        def closure() -> torch.Tensor:
            self.x.grad = None
            terms = compute()
            terms["total"].backward()
            values.update({k: float(v.detach()) for k, v in terms.items()})
            return terms["total"]

        if self.lbfgs:
            self.optim.step(closure)
        else:
            closure()
            self.optim.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)
        return values
