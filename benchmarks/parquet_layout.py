"""Benchmark: one fixed_size_binary(784) column versus 784 uint8 columns for the image Parquet.

Writes and reads the 60,000 Fashion-MNIST training images both ways (zstd) and prints time and
size; the figures behind the schema choice in storage/datasets.py.

    .venv/bin/python benchmarks/parquet_layout.py
"""

import io
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.storage import datasets
from mnist_pipeline.tasks.core import sources
from mnist_pipeline.tasks.core.decode import decode_source
from mnist_pipeline.storage import raw


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    spec = sources.SourceSpec.parse("fashion-mnist")
    files = {r: raw.read_input(p) for r, p in sources.find_system_copy(spec.known).items()}
    train = decode_source("idx", files, "fashion")["train"]
    flat = train.images.reshape(len(train), -1)

    def binary_table():
        return datasets.to_table(train)

    def wide_table():
        columns = {"sample_id": pa.array(train.sample_ids), "label": pa.array(train.labels)}
        columns.update({f"pixel{i}": pa.array(flat[:, i]) for i in range(flat.shape[1])})
        return pa.table(columns)

    def wide_to_numpy(table):
        return np.stack([table.column(f"pixel{i}").to_numpy() for i in range(784)], axis=1)

    print(f"{'layout':<28} {'build+write s':>13} {'read→numpy s':>13} {'file MB':>8}")
    for name, build, to_numpy in (
        ("fixed_size_binary(784)", binary_table, lambda t: datasets.from_table(t).images),
        ("784 uint8 columns", wide_table, wide_to_numpy),
    ):
        def write():
            sink = io.BytesIO()
            pq.write_table(build(), sink, compression="zstd")
            return sink.getvalue()

        write_s, data = best_of(write)
        read_s, images = best_of(lambda: to_numpy(pq.read_table(io.BytesIO(data))))
        assert np.array_equal(images.reshape(len(train), -1), flat)
        print(f"{name:<28} {write_s:>13.3f} {read_s:>13.3f} {len(data) / 1e6:>8.1f}")


if __name__ == "__main__":
    main()
