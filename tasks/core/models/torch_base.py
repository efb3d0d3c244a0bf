"""What the torch families share: one training loop, scoring, and their files (safetensors).

Training keeps the whole split as it came, uint8 in one tensor, and indexes shuffled batches out
of it, turning only each batch into floats (a DataLoader costs more than these models do on a
CPU; a float copy of the split would cost 4x its memory, and time that grows with it). Every
random draw (initialisation, shuffling, random changes, dropout) comes from generators seeded
here, never from torch's global generator, so two models training in threads of one process do
not disturb each other's randomness: same seed, same weights.

torch is imported where it is used (it takes seconds), so that declaring the families, and
parsing a command line, does not import it.
"""

import copy
import json
import math
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from mnist_pipeline.tasks.core.calibration import calibrate
from mnist_pipeline.tasks.core.dataset import pixel_counts
from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models.base import (
    Classifier,
    FitReport,
    accuracy,
    class_count,
    flat_images,
    flat_pixels,
    validation_steps,
)
from mnist_pipeline.tasks.core.models.configs import TorchConfig

WEIGHTS_FILE = "weights.safetensors"
# What a torch family's models are made with (recorded with each model: FamilyDeclaration.libraries).
TORCH_LIBRARIES = ("numpy", "torch", "safetensors")
PREDICT_BATCH = 2048
# Module construction draws from torch's global generator; this lock makes seeding and building
# one step, so concurrent trainings in threads get the weights their seed says.
_INIT_LOCK = threading.Lock()
# How often (in steps) training looks at the clock for its time budget.
BUDGET_CHECK_STEPS = 25


class TorchClassifier(Classifier):
    """Shared fit / predict / save for the torch families; a family says how its network is
    built (:meth:`build`), how its input is standardized, and how it is optimized."""

    config: TorchConfig
    # Input shape the network takes after flattening to (n, 784) floats.
    input_shape: tuple[int, ...] = (-1, 784)
    channels_last = False

    def __init__(self, config: TorchConfig, net=None) -> None:
        super().__init__(config)
        self.net = net

    # -- what a family says ---------------------------------------------------------------
    def build(self, mean, std):
        """The network, standardizing its input with ``mean`` and ``std``."""
        raise NotImplementedError

    def optimizer(self, net):
        import torch

        return torch.optim.AdamW(net.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay)

    def penalty(self, net):
        """Extra loss term (logistic regression's explicit L2 penalty)."""
        return 0.0

    def normalization(self, counts: np.ndarray):
        """Mean and std the network standardizes its input with, from :func:`pixel_counts` of the
        train split (scalars over every pixel by default)."""
        return moments(counts.sum(0, keepdims=True), pixel_values())

    # -- training ---------------------------------------------------------------------------
    def fit(self, train, validation, *, seed, progress=None, budget=None, device="cpu") -> "TorchClassifier":
        """``config.steps`` optimizer steps on shuffled (and, as configured, augmented) batches,
        validating ``config.validations`` times; the best validated weights are kept. Past the
        time budget, training stops at the next validation and keeps the best weights so far.
        The network trains and validates on ``device``; batches are drawn and augmented on the
        CPU, and the kept model comes back on the CPU."""
        started = time.perf_counter()
        session = _Session(self, train, validation, seed, device)
        best, history, stopped = _Best(), [], None
        for checkpoint in sorted(validation_steps(self.config.steps, self.config.validations)):
            step, loss, over_budget = session.train_until(checkpoint, budget)
            scores = self._log_scores(session.x_valid, session.net)
            metrics = {"step": step, "passes": round(step * self.config.batch_size / len(train), 2),
                       "train_loss": round(loss, 5),
                       "validation_accuracy": round(accuracy(validation.labels, scores.argmax(1).numpy()), 5),
                       "seconds": round(time.perf_counter() - started, 2)}
            history.append(metrics)
            best.offer(metrics, scores, session.net)
            if progress:
                progress(len(history), self.config.validations, metrics)
            if over_budget:
                stopped = f"time budget of {budget.seconds:g} s reached after {step} of {self.config.steps} steps"
                break
        self.net = best.restore(session.net)
        # Label smoothing leaves the network under-confident: a validation-fitted temperature
        # brings its confidence back in line with its accuracy (the labels it predicts stay).
        self.temperature, calibration = calibrate(best.scores, validation.labels)
        self.report = FitReport(
            validation_accuracy=best.accuracy, steps=history[-1]["step"], best_step=best.step, history=history,
            seconds=time.perf_counter() - started, stopped_early=stopped,
            validation_probabilities=self.probabilities(best.scores), calibration=calibration,
        )
        return self

    # -- scoring ------------------------------------------------------------------------------
    def _tensor(self, images: np.ndarray):
        import torch

        return self._shaped(torch.from_numpy(flat_pixels(images)))

    def _shaped(self, pixels):
        """``(n, 784)`` pixels in the layout the network takes."""
        import torch

        x = pixels.reshape(self.input_shape)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _predict_logits(self, x, net=None):
        import torch

        net = net if net is not None else self.net
        if net is None:
            raise RuntimeError(f"{self.family} model is not trained or loaded")
        net.eval()
        device = next(net.parameters()).device  # where the network is: training's device, else the CPU
        with torch.inference_mode():
            return torch.cat([net(x[i : i + PREDICT_BATCH].to(device)).cpu() for i in range(0, len(x), PREDICT_BATCH)])

    def _log_scores(self, x, net=None):
        """Log-softmax of the network's output; with ``flip_at_test`` the log of its softmax
        averaged with the mirror image's."""
        import torch

        log_probabilities = torch.log_softmax(self._predict_logits(x, net), dim=1)
        if self.config.flip_at_test:
            mirrored = self._shaped(x.reshape(-1, 1, 28, 28).flip(-1).reshape(len(x), -1))
            both = torch.stack([log_probabilities, torch.log_softmax(self._predict_logits(mirrored, net), dim=1)])
            log_probabilities = torch.logsumexp(both, dim=0) - math.log(2)
        return log_probabilities

    def log_scores(self, images: np.ndarray) -> np.ndarray:
        import torch

        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        # A float copy of one scoring batch at a time, not of all the images (4x their bytes).
        return torch.cat([self._log_scores(self._tensor(images[i : i + PREDICT_BATCH]))
                          for i in range(0, len(images), PREDICT_BATCH)]).numpy()

    # -- files --------------------------------------------------------------------------------
    def weights(self) -> dict[str, bytes]:
        from safetensors.torch import save as save_safetensors

        state = {name: tensor.contiguous() for name, tensor in self.net.state_dict().items()}
        shapes = {name: list(tensor.shape) for name, tensor in state.items()}
        return {WEIGHTS_FILE: save_safetensors(state, metadata={"shapes": json.dumps(shapes)})}

    @classmethod
    def from_weights(cls, config, files, meta) -> "TorchClassifier":
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

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


class _Session:
    """One training run of a torch family: its network on the device, the optimizer and its
    schedule, the seeded batches, and the validation images ready to score."""

    def __init__(self, model: TorchClassifier, train, validation, seed: int, device: str) -> None:
        import torch
        from mnist_pipeline.tasks.core.models.torch_layers import seed_dropout

        self.model, self.config, self.device = model, model.config, device
        self.pixels = _shared_tensor(flat_images(train.images))  # uint8, the split's own memory
        mean, std = model.normalization(pixel_counts(train.images))
        model.num_classes = class_count(train, validation)
        self.labels = torch.from_numpy(train.labels.astype(np.int64)).to(device)  # copied once, not per step
        self.x_valid = model._tensor(validation.images).to(device)
        with _INIT_LOCK:
            torch.manual_seed(seed)
            net = model.build(mean, std)
        if model.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net.to(device)
        if device == "cuda":  # the same seed, the same weights on one GPU too (cuDNN's fastest kernels are not)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        self.generator = torch.Generator().manual_seed(seed)
        # Dropout draws its masks where the network runs: on the CPU from the batches' own
        # generator, elsewhere from one of the device's.
        seed_dropout(self.net, self.generator if device == "cpu" else torch.Generator(device=device).manual_seed(seed))
        self.optimizer = model.optimizer(self.net)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=self.config.learning_rate,
                                                            total_steps=self.config.steps)
        self.batches = _batches(len(self.pixels), self.config.batch_size, self.generator)
        self.step = 0

    def train_until(self, checkpoint: int, budget) -> tuple[int, float, bool]:
        """Optimizer steps up to ``checkpoint``, or fewer when the time budget runs out first: the
        step reached, the mean training loss since the last call, whether the budget ran out."""
        import torch
        import torch.nn.functional as F

        self.net.train()
        # Summed where the network runs and read once: reading a GPU loss every step waits for it.
        # (float64, the same operations as Python floats: the reported loss is the same to the bit.)
        loss_sum, seen = torch.zeros((), dtype=torch.float64, device=self.device), 0
        while self.step < checkpoint:
            self.step += 1
            index = next(self.batches)
            # As flat_pixels does it (the same float32 division), for this batch only.
            batch = self.model._shaped(_augmented(self.pixels[index], self.config, self.generator)).to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.net(batch), self.labels[index],
                                   label_smoothing=self.config.label_smoothing) + self.model.penalty(self.net)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            loss_sum, seen = loss_sum + loss.detach().double() * len(index), seen + len(index)
            if budget is not None and self.step % BUDGET_CHECK_STEPS == 0 and budget.exceeded():
                return self.step, float(loss_sum) / seen, True
        return self.step, float(loss_sum) / max(seen, 1), False


def _batches(rows: int, size: int, generator) -> Iterator:
    """Indices of batches of ``size`` rows, pass after pass, each pass in a new seeded order."""
    import torch

    while True:
        order = torch.randperm(rows, generator=generator)
        for start in range(0, rows, size):
            yield order[start : start + size]


def _augmented(pixels, config: TorchConfig, generator):
    from mnist_pipeline.tasks.core.models.augment import augment

    return augment(pixels.float() / 255.0, config.augment, generator)


@dataclass
class _Best:
    """The best validation so far: its accuracy, step, scores and weights."""

    accuracy: float = -1.0
    step: int = 0
    scores: np.ndarray | None = None
    state: dict | None = field(default=None, repr=False)

    def offer(self, metrics: dict, scores, net) -> None:
        if metrics["validation_accuracy"] > self.accuracy:
            self.accuracy, self.step, self.scores = metrics["validation_accuracy"], metrics["step"], scores.numpy()
            self.state = copy.deepcopy(net.state_dict())

    def restore(self, net):
        """``net`` with the best weights, ready to score, on the CPU (files and later scoring
        are device-independent)."""
        net.load_state_dict(self.state)
        net.eval()
        return net.to("cpu")


def _shared_tensor(array: np.ndarray):
    """A tensor over ``array``'s memory; training only reads it, so a read-only array (a split
    decoded from Arrow or IDX buffers) is shared too instead of copied."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def pixel_values() -> np.ndarray:
    """What each uint8 value is as a network input (float32 value / 255, as flat_pixels makes it)."""
    return (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float64)


def moments(counts: np.ndarray, values: np.ndarray):
    """Per row of ``counts`` (how often each of the ``values`` occurs), the mean and the sample
    standard deviation of those values, as float32 tensors."""
    import torch

    n = counts.sum(1)
    mean = counts @ values / np.maximum(n, 1)
    variance = (counts * (values[None, :] - mean[:, None]) ** 2).sum(1) / np.maximum(n - 1, 1)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(np.sqrt(variance).astype(np.float32))
