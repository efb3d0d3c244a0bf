"""The layers the torch families' networks share (imported where a network is built: torch is slow to import)."""

import torch
from torch import nn


class Standardize(nn.Module):
    """``(x - mean) / std`` with the train split's statistics, saved with the weights; with
    ``squares``, of the pixels followed by their squares."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, squares: bool = False) -> None:
        super().__init__()
        self.squares = squares
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.squares:
            x = torch.cat([x, x * x], dim=1)
        return (x - self.mean) / self.std


class SeededDropout(nn.Module):
    """Dropout drawing its masks from its own generator (never torch's global one, which trainings
    in threads of one process would share)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.generator is None:
            raise RuntimeError("SeededDropout needs a generator before training")
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)


def seed_dropout(net: nn.Module, generator: torch.Generator) -> None:
    """Give every SeededDropout of ``net`` the generator to draw its masks from."""
    for module in net.modules():
        if isinstance(module, SeededDropout):
            module.generator = generator
