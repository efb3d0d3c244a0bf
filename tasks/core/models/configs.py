"""One configuration object per model family; the defaults are the measured choices.

The defaults were chosen on Fashion-MNIST's validation split (never its test split), with the
time budgets of the README in mind: two CPU cores training four families at once.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Family = Literal["logreg", "svm", "mlp", "cnn"]
FAMILIES: tuple[Family, ...] = ("logreg", "svm", "mlp", "cnn")


class FamilyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def smoke(self) -> "FamilyConfig":
        """The cheapest version of this config (one epoch), for checking a set-up."""
        return self


class TorchConfig(FamilyConfig):
    # Passes over the train split; the weights of the epoch with the best validation accuracy are kept.
    epochs: int = Field(default=15, ge=1)
    batch_size: int = Field(default=128, ge=1)
    # Peak of the one-cycle schedule (warm-up, then cosine decay to ~0 in the last epoch).
    learning_rate: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)

    def smoke(self) -> "TorchConfig":
        return self.model_copy(update={"epochs": 1})


class LogRegConfig(TorchConfig):
    """Multinomial (softmax) logistic regression: one linear layer, cross-entropy, L2 penalty."""

    # 20 epochs of Nesterov SGD reach lbfgs' optimum to within 0.1 pp in ~4 s instead of 167 s.
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=0.1, gt=0)
    # L2 penalty on the weights (added to the loss, as in sklearn's C = 1 / (n * weight_decay)).
    weight_decay: float = Field(default=1e-3, ge=0)
    # Added to each pixel's standard deviation before standardizing, so almost-constant border
    # pixels are not blown up into noise.
    std_floor: float = Field(default=0.1, gt=0)


class MlpConfig(TorchConfig):
    """Two hidden ReLU layers (784-256-256-10) with dropout, AdamW, one-cycle learning rate."""

    hidden: tuple[int, int] = (256, 256)
    dropout: float = Field(default=0.2, ge=0, lt=1)
    # 12 epochs of batch 128 on one thread: ~26 s for 54k images.
    epochs: int = Field(default=12, ge=1)


class CnnConfig(TorchConfig):
    """Two conv-maxpool-BN-ReLU blocks, a 128-unit dense layer, dropout; channels_last on CPU."""

    channels: tuple[int, int] = (16, 32)
    dense: int = Field(default=128, ge=1)
    dropout: float = Field(default=0.25, ge=0, lt=1)
    # ~12 s per epoch on one thread: 9 epochs fit the two-minute budget.
    epochs: int = Field(default=9, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)


class SvmConfig(FamilyConfig):
    """RBF-kernel support vector machine (libsvm, one-vs-one) on PCA components of the pixels."""

    # PCA keeps ~90% of the pixel variance in 100 components and makes the kernel ~8x cheaper.
    pca_components: int = Field(default=100, ge=1, le=784)
    C: float = Field(default=10.0, gt=0)
    # "scale" is 1 / (n_components * variance of the components), as in scikit-learn.
    gamma: float | Literal["scale"] = "scale"
    # libsvm's kernel cache; more than the default 200 MB halves the fit on 54k images.
    cache_mb: int = Field(default=1000, ge=50)
    # Train on at most this many (seeded, class-stratified) rows; None means all of them.
    max_train_rows: int | None = Field(default=None, ge=10)

    def smoke(self) -> "SvmConfig":
        return self.model_copy(update={"pca_components": min(self.pca_components, 30)})


class ModelConfigs(FamilyConfig):
    """The configs of all four families, as one value in the training settings."""

    logreg: LogRegConfig = LogRegConfig()
    svm: SvmConfig = SvmConfig()
    mlp: MlpConfig = MlpConfig()
    cnn: CnnConfig = CnnConfig()

    def of(self, family: Family) -> FamilyConfig:
        return getattr(self, family)
