"""An exponential moving average (EMA) of a network's weights (``training.ema_decay``)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn


class WeightEMA:
    """EMA of every floating-point entry of a network's ``state_dict`` (parameters and
    BatchNorm running statistics); integer buffers (``num_batches_tracked``) are not averaged.

    After optimizer step ``step`` (1-based: the count of steps taken) :meth:`update` sets
    ``ema = decay * ema + (1 - decay) * weights``; before ``start_step`` the average is reset to
    the weights instead, so averaging starts from the weights of step ``start_step``.

    Parameters
    ----------
    net : nn.Module
        The (unwrapped) network; the average starts as a copy of its weights.
    decay : float
        In (0, 1), e.g. 0.999 (an average over roughly the last ``1 / (1 - decay)`` steps).
    start_step : int
        The first step whose update averages (earlier ones copy).
    """

    def __init__(self, net: nn.Module, decay: float, start_step: int = 0) -> None:
        self.decay = float(decay)
        self.start_step = int(start_step)
        self.shadow: dict[str, Tensor] = {k: v.detach().clone() for k, v in net.state_dict().items()
                                          if v.is_floating_point()}

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        """Fold ``net``'s current weights into the average after optimizer step ``step``."""
        current = net.state_dict()
        if step < self.start_step:
            for k, v in self.shadow.items():
                v.copy_(current[k])
            return
        for k, v in self.shadow.items():
            v.mul_(self.decay).add_(current[k].detach().to(v.dtype), alpha=1.0 - self.decay)

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged tensors, by ``state_dict`` key."""
        return dict(self.shadow)

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        """Set the average (e.g. from a checkpoint); every averaged key must be there."""
        missing = sorted(set(self.shadow) - set(tensors))
        if missing:
            raise ValueError(f"the saved EMA weights lack {missing[:5]}; resume with the config the run was started with")
        for k, v in self.shadow.items():
            v.copy_(tensors[k])

    def copy_to(self, net: nn.Module) -> None:
        """Load the averaged weights into ``net`` (its other entries are kept)."""
        net.load_state_dict(self.shadow, strict=False)

    @contextlib.contextmanager
    def applied(self, net: nn.Module) -> Iterator[nn.Module]:
        """``net`` with the averaged weights inside the block, its own weights restored after."""
        saved = {k: v.detach().clone() for k, v in net.state_dict().items() if k in self.shadow}
        self.copy_to(net)
        try:
            yield net
        finally:
            net.load_state_dict(saved, strict=False)
