"""L-BFGS without line search, made independent of the loss's scale.

torch.optim.LBFGS takes its first step as 1/|g|₁ and falls back to a raw gradient
step (H = I) whenever a curvature pair is rejected by an absolute threshold. With
style losses of order 1e8 that first step moves no pixel, the next pair is rejected,
and the raw step then throws the image to infinity. Here the first step moves the
largest-gradient pixel by `first_step`, pairs are accepted by a relative test, and a
rejected pair keeps the last good curvature scale. Each `step` evaluates the loss
once, so an iteration costs one forward and one backward pass.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch


class LBFGS:
    def __init__(self, param: torch.Tensor, history: int = 20, first_step: float = 0.01):
        self.param = param
        self.history = history
        self.first_step = first_step
        # Curvature pairs live in slots that are allocated once and then reused: a new
        # pair's 2 image-sized buffers each iteration, freed `history` iterations later,
        # fragmented the heap (resident memory kept growing with the pairs' count fixed).
        self.s: list[torch.Tensor] = []  # the steps taken
        self.y: list[torch.Tensor] = []  # the gradient's change over each
        self.rho: list[torch.Tensor] = []  # 1 / (y·s)
        self.pairs: deque[int] = deque()  # slots of the accepted pairs, oldest first
        self.last: int | None = None  # the slot of the last step
        self.h_diag: torch.Tensor | None = None
        self.prev_grad: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """`closure` computes the loss and its gradient; returns that loss (before the step)."""
        with torch.enable_grad():
            loss = closure()
        grad = self.param.grad.detach().flatten()
        if self.last is None:
            self.prev_grad = grad.clone()
        else:
            s, y = self.s[self.last], self.y[self.last]
            torch.sub(grad, self.prev_grad, out=y)
            ys, yy = y.dot(s), y.dot(y)
            if ys > 1e-10 * yy.sqrt() * s.norm():  # curvature is positive along s
                if len(self.pairs) == self.history:
                    self.pairs.popleft()
                self.pairs.append(self.last)
                self.rho[self.last] = 1.0 / ys
                self.h_diag = ys / yy
            self.prev_grad.copy_(grad)
        self.last = self._free_slot()
        direction = torch.neg(grad, out=self.s[self.last])
        if self.h_diag is None:
            direction.mul_(self.first_step / grad.abs().max().clamp_min(1e-30))
        else:
            self._two_loop(direction)
        self.param.add_(direction.view_as(self.param))
        return loss

    def _free_slot(self) -> int:
        """A slot no accepted pair holds (at most history + 1 are ever made)."""
        for slot in range(len(self.s)):
            if slot not in self.pairs:
                return slot
        self.s.append(torch.empty_like(self.prev_grad))
        self.y.append(torch.empty_like(self.prev_grad))
        self.rho.append(self.prev_grad.new_zeros(()))
        return len(self.s) - 1

    def _two_loop(self, q: torch.Tensor) -> torch.Tensor:
        # In-place multiply-adds: these loops read every pair each iteration, and
        # temporaries for alpha·y would double that traffic.
        alphas = []
        for i in reversed(self.pairs):
            alpha = self.rho[i] * self.s[i].dot(q)
            q.addcmul_(self.y[i], alpha, value=-1)
            alphas.append(alpha)
        q.mul_(self.h_diag)
        for i, alpha in zip(self.pairs, reversed(alphas), strict=True):
            beta = self.rho[i] * self.y[i].dot(q)
            q.addcmul_(self.s[i], alpha - beta)
        return q
