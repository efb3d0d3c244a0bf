from mnist_pipeline.tasks.core.models.configs import CnnConfig, LogRegConfig, MlpConfig, SvmConfig

# Small but real: a few passes over 3,000 MNIST digits separate a working family from a broken one.
FAST = {
    "logreg": LogRegConfig(steps=60, validations=5),
    "svm": SvmConfig(pca_components=30, deskew=False),
    "mlp": MlpConfig(steps=72, validations=3),
    "cnn": CnnConfig(steps=48, validations=2, channels=(8, 16), dense=32),
}
