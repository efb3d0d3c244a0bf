"""`mnist predict` and the ``predict`` flow with a model of a dataset that names its classes
(Fashion-MNIST): the same pixels get the same answer whatever file they come in."""

import json

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mnist_pipeline.flows.config import PredictConfig, TrainAllConfig
from mnist_pipeline.flows.mnist import mnist
from mnist_pipeline.flows.predict import predict
from mnist_pipeline.storage import datasets
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.idx import encode_idx
from mnist_pipeline.tasks.core.sources import FASHION_MNIST

from .test_registry import one_error_line, run_cli
from .test_train import QUICK

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def fashion(tmp_path_factory, fashion_dir):
    """A storage root with a logistic regression of the full Fashion-MNIST in production, and
    the first 100 test images."""
    home = str(tmp_path_factory.mktemp("fashion-home"))
    config = TrainAllConfig(home=home, source="fashion-mnist", train={"families": QUICK, "models": ["logreg"]},
                            promotion={"min_test_accuracy": 0.5})
    result = mnist(config)
    assert result.promotion.promote
    test = datasets.read_split(StorageRoot(home), result.dataset_version, "test")
    return home, test.take(np.arange(100))


def predict_runs() -> int:
    """How many completed runs of the ``predict`` flow the test's Prefect server has."""
    from prefect.settings import PREFECT_API_URL

    response = httpx.post(f"{PREFECT_API_URL.value()}/flow_runs/count", json={
        "flows": {"name": {"any_": ["predict"]}}, "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}})
    response.raise_for_status()
    return response.json()


def predictions(done) -> list[dict]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_same_pixels_get_the_same_answer_in_any_container(fashion, tmp_path):
    home, test = fashion
    pngs = []
    for i, image in enumerate(test.images):
        pngs.append(str(tmp_path / f"{i:03d}.png"))
        Image.fromarray(image).save(pngs[-1])
    (tmp_path / "hundred-idx3-ubyte").write_bytes(encode_idx(np.ascontiguousarray(test.images)))
    datasets.write_split_file(StorageRoot(home), str(tmp_path / "hundred.parquet"), test)

    runs_before = predict_runs()
    as_png = predictions(run_cli(home, "predict", *pngs, "--json"))
    assert predict_runs() == runs_before + 1  # one code path: the command is a run of the predict flow
    as_idx = predictions(run_cli(home, "predict", str(tmp_path / "hundred-idx3-ubyte"), "--json"))
    as_parquet = predictions(run_cli(home, "predict", str(tmp_path / "hundred.parquet"), "--json"))
    assert len(as_png) == len(as_idx) == len(as_parquet) == 100
    for png, idx, parquet in zip(as_png, as_idx, as_parquet):
        assert png["label"] == idx["label"] == parquet["label"]
        # one image at a time or a hundred in a batch: the same to float rounding
        np.testing.assert_allclose(png["probabilities"], idx["probabilities"], atol=1e-5)
        assert idx["probabilities"] == parquet["probabilities"]
        assert png["label_name"] == FASHION_MNIST.class_names[png["label"]]
    correct = sum(row["label"] == label for row, label in zip(as_idx, test.labels))
    assert correct >= 75  # a two-epoch logistic regression: about 80%

    text = run_cli(home, "predict", pngs[0]).stdout.strip().split("\t")
    assert text[0] == "000.png" and text[2] == FASHION_MNIST.class_names[int(text[1])] and len(text) == 4

    # 16-bit greyscale, RGB and opaque RGBA of the same grey pixels answer as the 8-bit PNG does
    others = []
    for i, image in enumerate(test.images[:20]):
        for kind, picture in (("I16", Image.fromarray(image.astype("<u2") * 257)),
                              ("RGB", Image.fromarray(np.stack([image] * 3, -1))),
                              ("RGBA", Image.fromarray(np.dstack([image] * 3 + [np.full((28, 28), 255, np.uint8)])))):
            others.append(str(tmp_path / f"{kind}_{i:03d}.png"))
            picture.save(others[-1])
    answers = predictions(run_cli(home, "predict", *others, "--json"))
    for i, row in enumerate(answers):
        assert row["label"] == as_png[i // 3]["label"], row["input"]
        np.testing.assert_allclose(row["probabilities"], as_png[i // 3]["probabilities"], atol=1e-5)


def test_batch_predict_scores_every_readable_file_and_reports_each_bad_one(fashion, tmp_path):
    home, test = fashion
    for i in range(2):
        Image.fromarray(test.images[i]).save(tmp_path / f"good{i}.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a picture")
    files = [str(tmp_path / name) for name in ("good0.png", "empty.png", "notes.png", "good1.png")]
    done = run_cli(home, "predict", *files)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == ["good0.png", "good1.png"]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: empty.png is empty (0 bytes); give a PNG or JPEG image",
                      "error: notes.png is not an image file PIL can read (13 bytes that are no PNG, JPEG, BMP, GIF, "
                      "WebP or TIFF); give PNG or JPEG images"]
    assert "2 of 4 input files could not be scored" in done.stderr and "object at 0x" not in done.stderr


def test_a_null_image_in_a_parquet_input_is_an_error_naming_its_row(fashion, tmp_path):
    home, test = fashion
    images = pa.array([image.tobytes() for image in test.images[:5]], pa.binary(784))
    images = pa.array([None if i == 3 else value for i, value in enumerate(images.to_pylist())], pa.binary(784))
    pq.write_table(pa.table({"sample_id": pa.array(np.arange(100, 105), pa.int64()), "image": images}),
                   tmp_path / "holes.parquet")
    line = one_error_line(run_cli(home, "predict", str(tmp_path / "holes.parquet")))
    assert "row 3 (sample_id 103) has no image (null)" in line


def test_the_predict_flow_writes_class_names(fashion, tmp_path):
    home, test = fashion
    datasets.write_split_file(StorageRoot(home), str(tmp_path / "batch.parquet"), test)
    predict(PredictConfig(home=home, inputs=[str(tmp_path / "batch.parquet")], output=str(tmp_path / "out.parquet")))
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["sample_id", "predicted", "label_name", "probability", "model_id", "probabilities",
                                  "image"]
    names = table.column("label_name").to_pylist()
    assert names == [FASHION_MNIST.class_names[label] for label in table.column("predicted").to_pylist()]


def test_the_predict_flow_streams_a_file_in_batches_with_the_answers_of_one_pass(fashion, tmp_path, monkeypatch):
    from mnist_pipeline.storage import evaluations
    from mnist_pipeline.storage.store import Store
    from mnist_pipeline.tasks.predict import load_registered

    home, test = fashion
    datasets.write_split_file(StorageRoot(home), str(tmp_path / "batch.parquet"), test)
    monkeypatch.setattr(evaluations, "SCORE_BATCH_ROWS", 7)  # 100 rows: 15 batches, the last of 2
    outcome = predict(PredictConfig(home=home, inputs=[str(tmp_path / "batch.parquet")], output=str(tmp_path / "out.parquet")))
    assert outcome.rows == 100
    parquet = pq.ParquetFile(tmp_path / "out.parquet")
    assert parquet.metadata.num_row_groups == 15  # written a batch at a time
    table = parquet.read()
    whole = load_registered(Store.resolve(home), "production").model.predict_proba(test.images)
    assert table.column("sample_id").to_pylist() == test.sample_ids.tolist()
    assert table.column("predicted").to_pylist() == whole.argmax(1).tolist()
    np.testing.assert_allclose(np.array(table.column("probabilities").to_pylist()), whole, rtol=1e-5, atol=1e-7)


def test_a_stream_that_fails_midway_leaves_no_output_file(fashion, tmp_path, monkeypatch):
    from mnist_pipeline.storage import evaluations

    home, test = fashion
    images = [None if i == 50 else image.tobytes() for i, image in enumerate(test.images)]
    pq.write_table(pa.table({"image": pa.array(images, pa.binary(784))}), tmp_path / "holes.parquet")
    monkeypatch.setattr(evaluations, "SCORE_BATCH_ROWS", 7)  # six batches are written before the bad row
    with pytest.raises(Exception, match="row 50 .sample_id 50. has no image"):
        predict(PredictConfig(home=home, inputs=[str(tmp_path / "holes.parquet")], output=str(tmp_path / "out.parquet")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holes.parquet"]  # no output, no temporary file
