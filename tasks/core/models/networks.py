"""The torch families (logistic regression, MLP, CNN): one training loop, three networks.

Training keeps the whole split in one tensor and indexes shuffled batches out of it (a DataLoader
costs more than these models do on a CPU). Every random draw (initialisation, shuffling, dropout)
comes from generators seeded here, never from torch's global generator, so two models training
in threads of one process do not disturb each other's randomness: same seed, same weights.
"""

import copy
import json
import math
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from tasks.core.errors import ModelFileError
from tasks.core.models.base import Classifier, FitReport, accuracy, flat_pixels
from tasks.core.models.configs import CnnConfig, LogRegConfig, MlpConfig, TorchConfig

WEIGHTS_FILE = "weights.safetensors"
PREDICT_BATCH = 2048
# Module construction draws from torch's global generator; this lock makes seeding and building
# one step, so concurrent trainings in threads get the weights their seed says.
_INIT_LOCK = threading.Lock()


class Standardize(nn.Module):
    """``(x - mean) / std`` with the train split's statistics, saved with the weights."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SeededDropout(nn.Module):
    """Dropout drawing its masks from its own generator (see the module docstring)."""

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


class TorchClassifier(Classifier):
    """Shared fit / predict / save for the three torch families."""

    config: TorchConfig
    # Input shape the network takes after flattening to (n, 784) floats.
    input_shape: tuple[int, ...] = (-1, 784)
    channels_last = False

    def __init__(self, config: TorchConfig, net: nn.Module | None = None) -> None:
        super().__init__(config)
        self.net = net

    # -- building -------------------------------------------------------------------------
    def build(self, mean: torch.Tensor, std: torch.Tensor) -> nn.Module:
        raise NotImplementedError

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            net.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay
        )

    def penalty(self, net: nn.Module) -> torch.Tensor | float:
        """Extra loss term (logistic regression's explicit L2 penalty)."""
        return 0.0

    def normalization(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std the network standardizes its input with (scalars by default)."""
        return pixels.mean().reshape(1), pixels.std().reshape(1)

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        return self._shaped(torch.from_numpy(flat_pixels(images)))

    def _shaped(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(n, 784)`` pixels in the layout the network takes."""
        x = pixels.reshape(self.input_shape)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    # -- training -------------------------------------------------------------------------
    def fit(self, train, validation, *, seed, progress=None, budget=None) -> FitReport:
        started = time.perf_counter()
        config = self.config
        pixels = torch.from_numpy(flat_pixels(train.images))
        mean, std = self.normalization(pixels)
        x_train = self._shaped(pixels)
        y_train = torch.from_numpy(train.labels.astype(np.int64))
        x_valid = self._tensor(validation.images)

        with _INIT_LOCK:
            torch.manual_seed(seed)
            net = self.build(mean, std)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        generator = torch.Generator().manual_seed(seed)
        for module in net.modules():
            if isinstance(module, SeededDropout):
                module.generator = generator

        optimizer = self.optimizer(net)
        batches = math.ceil(len(x_train) / config.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learning_rate, total_steps=config.epochs * batches
        )
        history: list[dict] = []
        best_accuracy, best_epoch, best_state = -1.0, 0, None
        for epoch in range(1, config.epochs + 1):
            net.train()
            order = torch.randperm(len(x_train), generator=generator)
            total_loss = 0.0
            for number, start in enumerate(range(0, len(x_train), config.batch_size)):
                index = order[start : start + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(x_train[index]), y_train[index]) + self.penalty(net)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += float(loss.detach()) * len(index)
                if budget is not None and number % 50 == 0:
                    budget.check(f"epoch {epoch}")
            self.net = net
            valid_accuracy = accuracy(validation.labels, self._predict_logits(x_valid).argmax(1).numpy())
            metrics = {
                "epoch": epoch,
                "train_loss": round(total_loss / len(x_train), 5),
                "validation_accuracy": round(valid_accuracy, 5),
                "seconds": round(time.perf_counter() - started, 2),
            }
            history.append(metrics)
            if valid_accuracy > best_accuracy:
                best_accuracy, best_epoch = valid_accuracy, epoch
                best_state = copy.deepcopy(net.state_dict())
            if progress:
                progress(epoch, config.epochs, metrics)
            if budget is not None:
                budget.check(f"after epoch {epoch} of {config.epochs}")
        net.load_state_dict(best_state)
        net.eval()
        self.net = net
        return FitReport(
            validation_accuracy=best_accuracy,
            epochs_run=config.epochs,
            best_epoch=best_epoch,
            history=history,
            seconds=time.perf_counter() - started,
        )

    # -- inference ------------------------------------------------------------------------
    def _predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            raise RuntimeError(f"{self.family} model is not trained or loaded")
        self.net.eval()
        with torch.inference_mode():
            return torch.cat([self.net(x[i : i + PREDICT_BATCH]) for i in range(0, len(x), PREDICT_BATCH)])

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, 10), np.float32)
        return torch.softmax(self._predict_logits(self._tensor(images)), dim=1).numpy()

    # -- files ----------------------------------------------------------------------------
    def weights(self) -> dict[str, bytes]:
        state = {name: tensor.contiguous() for name, tensor in self.net.state_dict().items()}
        shapes = {name: list(tensor.shape) for name, tensor in state.items()}
        return {WEIGHTS_FILE: save_safetensors(state, metadata={"shapes": json.dumps(shapes)})}

    @classmethod
    def from_weights(cls, config, files, meta) -> "TorchClassifier":
        try:
            state = load_safetensors(files[WEIGHTS_FILE])
        except (SafetensorError, KeyError, ValueError, OSError) as error:
            raise ModelFileError(
                f"{cls.family} weights ({WEIGHTS_FILE}) cannot be read: {error}; the file is "
                "truncated or not a safetensors file, so retrain the model or restore the file"
            ) from error
        model = cls(config)
        mean, std = state.get("0.mean"), state.get("0.std")
        if mean is None or std is None:
            raise ModelFileError(f"{cls.family} weights lack the input standardization (0.mean, 0.std)")
        net = model.build(mean, std)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ModelFileError(
                f"{cls.family} weights do not fit the network its config describes: {error}"
            ) from error
        if model.channels_last:
            net = net.to(memory_format=torch.channels_last)
        net.eval()
        model.net = net
        return model


class LogReg(TorchClassifier):
    family = "logreg"
    config: LogRegConfig

    def normalization(self, pixels):
        return pixels.mean(0), pixels.std(0) + self.config.std_floor

    def build(self, mean, std):
        return nn.Sequential(Standardize(mean, std), nn.Linear(784, 10))

    def optimizer(self, net):
        # Plain SGD with Nesterov momentum; the L2 penalty is in the loss (weights only, not bias).
        return torch.optim.SGD(net.parameters(), lr=self.config.learning_rate, momentum=0.9, nesterov=True)

    def penalty(self, net):
        return self.config.weight_decay / 2 * net[1].weight.pow(2).sum()


class Mlp(TorchClassifier):
    family = "mlp"
    config: MlpConfig

    def build(self, mean, std):
        first, second = self.config.hidden
        p = self.config.dropout
        return nn.Sequential(
            Standardize(mean, std),
            nn.Linear(784, first), nn.ReLU(), SeededDropout(p),
            nn.Linear(first, second), nn.ReLU(), SeededDropout(p),
            nn.Linear(second, 10),
        )


class Cnn(TorchClassifier):
    family = "cnn"
    config: CnnConfig
    input_shape = (-1, 1, 28, 28)
    # NHWC is ~35% faster to train and ~2.7x faster to run for small convolutions on CPU.
    channels_last = True

    def build(self, mean, std):
        c1, c2 = self.config.channels
        p = self.config.dropout
        return nn.Sequential(
            Standardize(mean, std),
            # Pooling before batch norm and ReLU does their work on a quarter of the pixels
            # (they were half the time of an epoch at full resolution).
            nn.Conv2d(1, c1, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, self.config.dense), nn.ReLU(), SeededDropout(p),
            nn.Linear(self.config.dense, 10),
        )
