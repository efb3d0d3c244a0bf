"""The torch families (logistic regression, MLP, CNN): one training loop, three networks.

Training keeps the whole split as it came, uint8 in one tensor, and indexes shuffled batches out
of it, turning only each batch into floats (a DataLoader costs more than these models do on a
CPU; a float copy of the split would cost 4x its memory, and time that grows with it). Every
random draw (initialisation, shuffling, dropout) comes from generators seeded here, never from
torch's global generator, so two models training in threads of one process do not disturb each
other's randomness: same seed, same weights.
"""

import copy
import json
import math
import threading
import time
import warnings
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from mnist_pipeline.tasks.core.calibration import calibrate
from mnist_pipeline.tasks.core.dataset import pixel_counts
from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models.augment import augment
from mnist_pipeline.tasks.core.models.base import (
    Classifier, FitReport, accuracy, class_count, flat_images, flat_pixels, validation_steps,
)
from mnist_pipeline.tasks.core.models.configs import CnnConfig, LogRegConfig, MlpConfig, TorchConfig

WEIGHTS_FILE = "weights.safetensors"
PREDICT_BATCH = 2048
# Module construction draws from torch's global generator; this lock makes seeding and building
# one step, so concurrent trainings in threads get the weights their seed says.
_INIT_LOCK = threading.Lock()


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

    def normalization(self, counts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std the network standardizes its input with, from :func:`pixel_counts` of the
        train split (scalars over every pixel by default)."""
        return moments(counts.sum(0, keepdims=True), pixel_values())

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        return self._shaped(torch.from_numpy(flat_pixels(images)))

    def _shaped(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(n, 784)`` pixels in the layout the network takes."""
        x = pixels.reshape(self.input_shape)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    # -- training -------------------------------------------------------------------------
    def fit(self, train, validation, *, seed, progress=None, budget=None, device="cpu") -> "TorchClassifier":
        """``config.steps`` optimizer steps on shuffled (and, as configured, augmented) batches,
        validating ``config.validations`` times; the best validated weights are kept. Past the
        time budget, training stops at the next validation and keeps the best weights so far.
        The network trains and validates on ``device`` (a :func:`devices.resolve` name); batches
        are drawn and augmented on the CPU, and the kept model comes back on the CPU."""
        started = time.perf_counter()
        config = self.config
        pixels = _shared_tensor(flat_images(train.images))  # uint8, the split's own memory
        mean, std = self.normalization(pixel_counts(train.images))
        self.num_classes = class_count(train, validation)
        y_train = torch.from_numpy(train.labels.astype(np.int64))
        x_valid = self._tensor(validation.images).to(device)

        with _INIT_LOCK:
            torch.manual_seed(seed)
            net = self.build(mean, std)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        net = net.to(device)
        if device == "cuda":  # the same seed, the same weights on one GPU too (cuDNN's fastest kernels are not)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        generator = torch.Generator().manual_seed(seed)
        # Dropout draws its masks where the network runs; on the CPU from the same generator
        # as the batches (so CPU training stays what it was), elsewhere from one of the device's.
        masks = generator if device == "cpu" else torch.Generator(device=device).manual_seed(seed)
        for module in net.modules():
            if isinstance(module, SeededDropout):
                module.generator = masks

        optimizer = self.optimizer(net)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=config.steps)
        checkpoints = validation_steps(config.steps, config.validations)
        history: list[dict] = []
        best_accuracy, best_step, best_state, best_scores, stopped = -1.0, 0, None, None, None
        order, cursor, loss_sum, seen = torch.randperm(len(pixels), generator=generator), 0, 0.0, 0
        net.train()
        for step in range(1, config.steps + 1):
            if cursor >= len(pixels):  # a new pass over the split, in a new order
                order, cursor = torch.randperm(len(pixels), generator=generator), 0
            index = order[cursor : cursor + config.batch_size]
            cursor += config.batch_size
            # As flat_pixels does it (the same float32 division), for this batch only.
            batch = self._shaped(augment(pixels[index].float() / 255.0, config.augment, generator)).to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(batch), y_train[index].to(device), label_smoothing=config.label_smoothing)
            loss = loss + self.penalty(net)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum, seen = loss_sum + float(loss.detach()) * len(index), seen + len(index)
            over_budget = budget is not None and step % 25 == 0 and budget.exceeded()
            if step not in checkpoints and not over_budget:
                continue
            self.net = net
            scores = self._log_scores(x_valid)
            valid_accuracy = accuracy(validation.labels, scores.argmax(1).numpy())
            net.train()
            metrics = {"step": step, "passes": round(step * config.batch_size / len(pixels), 2),
                       "train_loss": round(loss_sum / max(seen, 1), 5),
                       "validation_accuracy": round(valid_accuracy, 5),
                       "seconds": round(time.perf_counter() - started, 2)}
            loss_sum, seen = 0.0, 0
            history.append(metrics)
            if valid_accuracy > best_accuracy:
                best_accuracy, best_step, best_scores = valid_accuracy, step, scores.numpy()
                best_state = copy.deepcopy(net.state_dict())
            if progress:
                progress(len(history), config.validations, metrics)
            if over_budget:
                stopped = f"time budget of {budget.seconds:g} s reached after {step} of {config.steps} steps"
                break
        net.load_state_dict(best_state)
        net.eval()
        self.net = net.to("cpu")  # files and later scoring are device-independent
        # Label smoothing leaves the network under-confident: a validation-fitted temperature
        # brings its confidence back in line with its accuracy (the labels it predicts stay).
        self.temperature, calibration = calibrate(best_scores, validation.labels)
        self.report = FitReport(
            validation_accuracy=best_accuracy,
            steps=history[-1]["step"],
            best_step=best_step,
            history=history,
            seconds=time.perf_counter() - started,
            stopped_early=stopped,
            validation_probabilities=self.probabilities(best_scores),
            calibration=calibration,
        )
        return self

    # -- inference ------------------------------------------------------------------------
    def _predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            raise RuntimeError(f"{self.family} model is not trained or loaded")
        self.net.eval()
        device = next(self.net.parameters()).device  # where the network is: training's device, else the CPU
        with torch.inference_mode():
            return torch.cat([self.net(x[i : i + PREDICT_BATCH].to(device)).cpu()
                              for i in range(0, len(x), PREDICT_BATCH)])

    def _log_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Log-softmax of the network's output; with ``flip_at_test`` the log of its softmax
        averaged with the mirror image's."""
        log_probabilities = torch.log_softmax(self._predict_logits(x), dim=1)
        if self.config.flip_at_test:
            mirrored = self._shaped(x.reshape(-1, 1, 28, 28).flip(-1).reshape(len(x), -1))
            both = torch.stack([log_probabilities, torch.log_softmax(self._predict_logits(mirrored), dim=1)])
            log_probabilities = torch.logsumexp(both, dim=0) - math.log(2)
        return log_probabilities

    def log_scores(self, images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        # A float copy of one scoring batch at a time, not of all the images (4x their bytes).
        return torch.cat([self._log_scores(self._tensor(images[i : i + PREDICT_BATCH]))
                          for i in range(0, len(images), PREDICT_BATCH)]).numpy()

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
        model.num_classes = int(meta.get("num_classes", model.num_classes))
        mean, std = state.get("standardize.mean"), state.get("standardize.std")
        if mean is None or std is None:
            raise ModelFileError(f"{cls.family} weights lack the input standardization (standardize.mean, .std)")
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


def _shared_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``'s memory; training only reads it, so a read-only array (a split
    decoded from Arrow or IDX buffers) is shared too instead of copied."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def pixel_values() -> np.ndarray:
    """What each uint8 value is as a network input (float32 value / 255, as flat_pixels makes it)."""
    return (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float64)


def moments(counts: np.ndarray, values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of ``counts`` (how often each of the ``values`` occurs), the mean and the sample
    standard deviation of those values, as float32 tensors."""
    n = counts.sum(1)
    mean = counts @ values / np.maximum(n, 1)
    variance = (counts * (values[None, :] - mean[:, None]) ** 2).sum(1) / np.maximum(n - 1, 1)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(np.sqrt(variance).astype(np.float32))


class LogReg(TorchClassifier):
    family = "logreg"
    config: LogRegConfig

    def normalization(self, counts):
        values = pixel_values()
        mean, std = moments(counts, values)
        if self.config.squares:  # the squares' own statistics follow the pixels'
            square_mean, square_std = moments(counts, values * values)
            mean, std = torch.cat([mean, square_mean]), torch.cat([std, square_std])
        return mean, std + self.config.std_floor

    def build(self, mean, std):
        return nn.Sequential(OrderedDict(
            standardize=Standardize(mean, std, squares=self.config.squares),
            linear=nn.Linear(len(mean), self.num_classes),
        ))

    def optimizer(self, net):
        # Plain SGD with Nesterov momentum; the L2 penalty is in the loss (weights only, not bias).
        return torch.optim.SGD(net.parameters(), lr=self.config.learning_rate, momentum=0.9, nesterov=True)

    def penalty(self, net):
        return self.config.weight_decay / 2 * net.linear.weight.pow(2).sum()


class Mlp(TorchClassifier):
    family = "mlp"
    config: MlpConfig

    def normalization(self, counts):
        # Per pixel, as for logistic regression (a scalar mean and std scored 89.4% on
        # Fashion-MNIST's test split against 90.1% per pixel with the same settings).
        mean, std = moments(counts, pixel_values())
        return mean, std + self.config.std_floor

    def build(self, mean, std):
        first, second = self.config.hidden
        p = self.config.dropout
        return nn.Sequential(OrderedDict(
            standardize=Standardize(mean, std),
            hidden1=nn.Linear(len(mean), first), relu1=nn.ReLU(), dropout1=SeededDropout(p),
            hidden2=nn.Linear(first, second), relu2=nn.ReLU(), dropout2=SeededDropout(p),
            output=nn.Linear(second, self.num_classes),
        ))


class Cnn(TorchClassifier):
    family = "cnn"
    config: CnnConfig
    input_shape = (-1, 1, 28, 28)
    # NHWC is ~35% faster to train and ~2.7x faster to run for small convolutions on CPU.
    channels_last = True

    def build(self, mean, std):
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
