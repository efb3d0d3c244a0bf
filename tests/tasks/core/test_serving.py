"""What `mnist serve` reads from a scoring request: MLflow's formats, and a clear 4xx for the rest."""

import numpy as np
import pytest
from mnist_pipeline.tasks.core.errors import InputError
from mnist_pipeline.tasks.core.serving import (
    RequestError,
    bearer_token,
    check_exposure,
    check_token,
    images_from_request,
    token_matches,
)

IMAGES = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28)).astype(np.uint8)


@pytest.mark.parametrize("payload", [
    {"instances": IMAGES.reshape(3, 784).tolist()},
    {"instances": IMAGES.tolist()},
    {"inputs": IMAGES[:, None].tolist()},
    {"inputs": {"images": IMAGES[..., None].astype(float).tolist()}},
    {"dataframe_split": {"columns": [f"pixel{i}" for i in range(784)], "data": IMAGES.reshape(3, 784).tolist()}},
    {"dataframe_split": {"columns": ["label", *range(784)], "data": [[7, *row] for row in IMAGES.reshape(3, 784).tolist()]}},
    {"dataframe_records": [{f"p{i}": int(v) for i, v in enumerate(row)} for row in IMAGES.reshape(3, 784)]},
], ids=["flat", "28x28", "channel-first", "named-tensor", "split", "split-with-label", "records"])
def test_every_mlflow_format_gives_the_same_pixels(payload):
    images = images_from_request(payload)
    assert images.dtype == np.uint8 and images.shape == (3, 28, 28)
    np.testing.assert_array_equal(images, IMAGES)


@pytest.mark.parametrize("payload, says", [
    ([1, 2], "JSON list"),
    ({"data": []}, "exactly one of"),
    ({"instances": [], "inputs": []}, "found instances, inputs"),
    ({"instances": []}, "non-empty list"),
    ({"instances": [[0] * 784, [0] * 783]}, "different shapes"),
    ({"instances": [[0] * 783]}, "shape [1, 783]"),
    ({"instances": [0] * 784}, "shape [784]"),
    ({"instances": [[256] + [0] * 783]}, "pixel value 256"),
    ({"instances": [[-1] + [0] * 783]}, "pixel value -1"),
    ({"instances": [[float("nan")] + [0] * 783]}, "pixel value nan"),
    ({"instances": [["a"] + [0] * 783]}, "'a'"),
    ({"instances": [[None] * 784]}, "the value None"),
    ({"instances": [[10**30] + [0] * 783]}, "the value 1000000000000000000000000000000"),
    ({"rows": [], "x" * 200: 1}, "keys rows, xxx"),
    ({"dataframe_split": {"columns": list(range(10)), "data": [[0] * 10]}}, "10 pixel columns"),
    ({"dataframe_split": [[0] * 784]}, "`data`"),
    ({"dataframe_records": [{"a": 1}]}, "1 pixel columns"),
])
def test_a_request_the_service_cannot_score_says_why(payload, says):
    with pytest.raises(RequestError, match=None) as raised:
        images_from_request(payload)
    assert raised.value.status == 400
    assert says in str(raised.value)


def test_too_many_images_are_refused_as_too_large():
    with pytest.raises(RequestError) as raised:
        images_from_request({"instances": [[0]] * 10_001})
    assert raised.value.status == 413


def test_a_token_is_asked_off_loopback_and_compared_exactly():
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("localhost", None)
    with pytest.raises(InputError, match="--host 0.0.0.0"):
        check_exposure("0.0.0.0", None)
    check_exposure("0.0.0.0", "s3cret")
    for bad in ("", "with space", "naïve"):
        with pytest.raises(InputError, match="printable ASCII"):
            check_token(bad)
    check_token("s3cret-token_0")
    assert bearer_token("Bearer s3cret") == "s3cret" and bearer_token("Basic s3cret") is None
    assert token_matches(None, None) and token_matches("s3cret", "s3cret")
    assert not token_matches(None, "s3cret") and not token_matches("s3cre", "s3cret")
