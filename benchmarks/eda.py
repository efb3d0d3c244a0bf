"""Benchmark: the full EDA report of the 70,000-image Fashion-MNIST.

Ingests Fashion-MNIST from Debian's package into a temporary storage root (not timed), then
times reading the splits, computing and drawing every figure, and writing the report.

    .venv/bin/python benchmarks/eda.py
"""

import json
import resource
import tempfile
import time

from mnist_pipeline.storage import datasets, reports
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core import dataset, sources
from mnist_pipeline.tasks.core.decode import decode_source
from mnist_pipeline.tasks.core.digits import SPLITS
from mnist_pipeline.tasks.core.eda.report import build_report, report_code_key
from mnist_pipeline.storage import raw


def ingest_fashion(root: StorageRoot) -> str:
    spec = sources.SourceSpec.parse("fashion-mnist")
    files = {r: raw.read_input(p) for r, p in sources.find_system_copy(spec.known).items()}
    splits = dataset.split_source(decode_source("idx", files, "fashion"), 0.1, 1 / 7, 0)
    meaning = sources.meaning_of(spec, files, None, None).as_dict()
    version = dataset.content_version(splits, meaning)
    manifest = {
        "version": version, "format_version": dataset.DATASET_FORMAT_VERSION, "created_at": "now",
        "source": {"spec": "fashion-mnist"}, "known_dataset": meaning["known_dataset"],
        "class_counts": dataset.class_counts(splits), "class_names": list(spec.known.class_names),
        "validation": {"success": True},
    }
    datasets.publish_dataset(root, version, splits, manifest, {}, {})
    return version


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        root = StorageRoot(home)
        version = ingest_fashion(root)
        start = time.perf_counter()
        manifest = datasets.read_manifest(root, version)
        splits = {name: datasets.read_split(root, version, name) for name in SPLITS}
        loaded = time.perf_counter()
        report = build_report(version, manifest, splits, previous=None)
        built = time.perf_counter()
        reports.write_eda_report(
            root, version, report_code_key(), report.html, report.figures, json.dumps(report.key_numbers)
        )
        done = time.perf_counter()
    print(f"read splits        {loaded - start:6.2f} s")
    print(f"compute + draw     {built - loaded:6.2f} s")
    print(f"write report       {done - built:6.2f} s")
    print(f"EDA report total   {done - start:6.2f} s  ({len(report.html) / 1e6:.1f} MB HTML)")
    print(f"peak memory (RSS)  {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
