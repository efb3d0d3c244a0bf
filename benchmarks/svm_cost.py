"""Benchmark: re-measure the SVM's cost model (``tasks/core/models/svm_cost.py``) on this machine.

For each size, on one thread (as the SVM trains beside the other families): PCA, the SVC fit and
its support vectors on that many seeded Fashion-MNIST training images, and scoring 2,000 held-out
images. Prints the tables to paste into ``svm_cost.py``, then, per size, the whole ``Svm.fit``
(pilot, fit, validation pass of ``--validation`` images) against what the cost model predicts.

    .venv/bin/python benchmarks/svm_cost.py [--sizes 1000,2000,5000,10000,20000,30000,40000,54000]
        [--validation 6000] [--skip-table]
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FASHION = "/usr/share/datasets/fashion-mnist"


def fashion() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(f"{FASHION}/train-images-idx3-ubyte.gz") as images, gzip.open(f"{FASHION}/train-labels-idx1-ubyte.gz") as labels:
        return (np.frombuffer(images.read(), np.uint8, offset=16).reshape(-1, 28, 28),
                np.frombuffer(labels.read(), np.uint8, offset=8))


def table(images, labels, sizes: list[int]) -> None:
    from mnist_pipeline.tasks.core.models.svm import deskew
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    order = np.random.default_rng(0).permutation(len(images))
    held_out = order[-2000:]
    x_held = images[held_out].reshape(-1, 784).astype(np.float32) / 255
    fits, vectors, pca_rates, score_rates = [], [], [], []
    for rows in sizes:
        chosen = order[:rows]
        x = images[chosen].reshape(-1, 784).astype(np.float32) / 255
        started = time.perf_counter()
        pca = PCA(200, svd_solver="randomized", random_state=0)
        components = pca.fit_transform(x)
        pca_s = time.perf_counter() - started
        started = time.perf_counter()
        svc = SVC(C=10, kernel="rbf", gamma="scale", cache_size=1000, decision_function_shape="ovr",
                  random_state=0).fit(components, labels[chosen])
        fit_s = time.perf_counter() - started
        support = int(svc.n_support_.sum())
        started = time.perf_counter()
        svc.decision_function(pca.transform(x_held))
        score_s = time.perf_counter() - started
        fits.append((rows, round(fit_s, 2)))
        vectors.append((rows, support))
        pca_rates.append(pca_s / rows)
        score_rates.append(score_s / len(x_held) / support)
        print(f"{rows:>7,} rows: PCA {pca_s:6.2f} s, fit {fit_s:7.2f} s, {support:,} support vectors, "
              f"scoring {score_s / len(x_held) / support * 1e9:.0f} ns per image and support vector", flush=True)
    started = time.perf_counter()
    deskew(images[:5000])
    deskew_rate = (time.perf_counter() - started) / 5000
    print("\nFIT_SECONDS =", tuple(fits))
    print("SUPPORT_VECTORS =", tuple(vectors))
    print(f"PCA_SECONDS_PER_ROW = {max(pca_rates):.2e}  (largest of the sizes)")
    print(f"SCORE_SECONDS_PER_KERNEL = {max(score_rates):.3e}  (largest of the sizes)")
    print(f"DESKEW_SECONDS_PER_IMAGE = {deskew_rate:.2e}")


def end_to_end(images, labels, sizes: list[int], validation_rows: int) -> None:
    """The whole fit of the SVM (its pilot, the fit, the validation pass; deskewing off) against
    its prediction (which counts the validation pass on one thread; the SVM scores on every core)."""
    from mnist_pipeline.tasks.core.digits import Digits
    from mnist_pipeline.tasks.core.models.svm import Svm, SvmConfig
    from mnist_pipeline.tasks.core.models.svm_cost import PILOT_ROWS, FitCost

    order = np.random.default_rng(1).permutation(len(images))
    digits = Digits(images, labels, np.arange(len(images)))
    validation = digits.take(order[-validation_rows:])
    print(f"\nSvm.fit, one thread, {validation_rows:,} validation images, no time budget:")
    for rows in sizes:
        model = Svm(SvmConfig(deskew=False, time_target_s=None)).fit(digits.take(order[:rows]), validation, seed=0)
        pilot = FitCost(PILOT_ROWS, 0, 200).seconds() if rows > PILOT_ROWS else 0.0
        predicted = pilot + FitCost(rows, validation_rows, 200).seconds()
        actual = model.report.seconds
        print(f"{rows:>7,} rows: {actual:7.1f} s, predicted {predicted:7.1f} s ({predicted / actual - 1:+.0%})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000,5000,10000,20000,30000,40000,54000")
    parser.add_argument("--validation", type=int, default=6000)
    parser.add_argument("--skip-table", action="store_true")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    sizes = [int(size) for size in args.sizes.split(",")]
    images, labels = fashion()
    with threadpool_limits(1):
        if not args.skip_table:
            table(images, labels, sizes)
        end_to_end(images, labels, sizes, args.validation)


if __name__ == "__main__":
    main()
