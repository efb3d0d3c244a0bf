"""Seeded random changes to a batch of training images: shifts, small rotations, mirror images.

Each call draws from the generator it is given (the training's own, never torch's global one),
so the same seed gives the same batches. Everything is a few vectorised tensor operations on the
CPU: a fraction of the cost of the network's own step.
"""

import math

import torch
import torch.nn.functional as F

from mnist_pipeline.tasks.core.models.configs import Augment

SIDE = 28


def augment(pixels: torch.Tensor, config: Augment, generator: torch.Generator) -> torch.Tensor:
    """``pixels`` as ``(n, 784)`` or ``(n, 1, 28, 28)`` floats; the same shape comes back."""
    if not config.active:
        return pixels
    shape = pixels.shape
    images = pixels.reshape(-1, 1, SIDE, SIDE)
    if config.rotate:
        images = _rotate(images, config.rotate, generator)
    if config.shift:
        images = _shift(images, config.shift, generator)
    if config.flip:
        mirror = torch.rand(len(images), generator=generator) < 0.5
        images = torch.where(mirror[:, None, None, None], images.flip(-1), images)
    return images.reshape(shape)


def _shift(images: torch.Tensor, most: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by whole pixels (up to ``most`` each way), the gap filled with black."""
    n = len(images)
    padded = F.pad(images, (most, most, most, most))
    rows = torch.randint(0, 2 * most + 1, (n,), generator=generator)[:, None] + torch.arange(SIDE)
    cols = torch.randint(0, 2 * most + 1, (n,), generator=generator)[:, None] + torch.arange(SIDE)
    return padded[torch.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def _rotate(images: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Each image turned about its centre by up to ``degrees`` either way (bilinear)."""
    angles = (torch.rand(len(images), generator=generator) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = angles.cos(), angles.sin(), torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
