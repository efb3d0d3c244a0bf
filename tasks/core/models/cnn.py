"""The cnn family: two conv-maxpool-BN-ReLU blocks, a dense layer, dropout; channels_last."""

from mnist_pipeline.tasks.core.models.configs import (
    NonNegative,
    Positive,
    Share,
    Steps,
    TorchConfig,
)
from mnist_pipeline.tasks.core.models.family import FamilyDeclaration
from mnist_pipeline.tasks.core.models.torch_base import TORCH_LIBRARIES, TorchClassifier
from pydantic import Field


class CnnConfig(TorchConfig):
    """Chosen on Fashion-MNIST's validation split within about 165 s on two threads (it trains
    alone on every core): 32/64 channels for 14 passes (93.73%) beat 24/48 for 18 (93.48%) and
    16/32 for 22 (93.30%).
    """

    channels: tuple[int, int] = (32, 64)
    dense: int = Field(default=128, ge=1)
    dropout: Share = 0.3
    # 14 passes over 54,000 images in batches of 128: about 11 s a pass on two threads.
    steps: Steps = 5908
    learning_rate: Positive = 3e-3
    weight_decay: NonNegative = 5e-4
    label_smoothing: Share = 0.1
    # Every second pass: a validation pass (scored twice, mirrored) costs about 1.2 s.
    validations: Steps = 7


class Cnn(TorchClassifier):
    family = "cnn"
    config: CnnConfig
    input_shape = (-1, 1, 28, 28)
    # NHWC is ~35% faster to train and ~2.7x faster to run for small convolutions on CPU.
    channels_last = True

    def build(self, mean, std):
        from collections import OrderedDict

        from mnist_pipeline.tasks.core.models.torch_layers import SeededDropout, Standardize
        from torch import nn

        c1, c2 = self.config.channels
        p = self.config.dropout
        side = self.input_shape[-1] // 4  # two 2x2 poolings
        return nn.Sequential(OrderedDict(
            standardize=Standardize(mean, std),
            # Pooling before batch norm and ReLU does their work on a quarter of the pixels
            # (they were half the time of an epoch at full resolution).
            conv1=nn.Conv2d(1, c1, 3, padding=1), pool1=nn.MaxPool2d(2), norm1=nn.BatchNorm2d(c1), relu1=nn.ReLU(),
            conv2=nn.Conv2d(c1, c2, 3, padding=1), pool2=nn.MaxPool2d(2), norm2=nn.BatchNorm2d(c2), relu2=nn.ReLU(),
            flatten=nn.Flatten(),
            dense=nn.Linear(c2 * side * side, self.config.dense), relu3=nn.ReLU(), dropout=SeededDropout(p),
            output=nn.Linear(self.config.dense, self.num_classes),
        ))


FAMILY = FamilyDeclaration(Cnn, CnnConfig, order=1, wide=True, on_device=True, libraries=TORCH_LIBRARIES)
