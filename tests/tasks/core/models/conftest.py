from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.models.cnn import CnnConfig
from mnist_pipeline.tasks.core.models.logreg import LogRegConfig
from mnist_pipeline.tasks.core.models.mlp import MlpConfig
from mnist_pipeline.tasks.core.models.svm import SvmConfig


class _Configs(dict):
    """Configs by family; a family without one here (a new one) is tested with its defaults."""

    def __missing__(self, family: str):
        return catalog.declaration(family).config()


# Small but real: a few passes over 3,000 MNIST digits separate a working family from a broken one.
FAST = _Configs({
    "logreg": LogRegConfig(steps=60, validations=5),
    "svm": SvmConfig(pca_components=30, deskew=False),
    "mlp": MlpConfig(steps=72, validations=3),
    "cnn": CnnConfig(steps=48, validations=2, channels=(8, 16), dense=32),
})
