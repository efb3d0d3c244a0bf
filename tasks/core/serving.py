"""What `mnist serve` reads and answers, without the web framework: the images in an MLflow
scoring request, the answer for each scored image, and the checks every request passes.

MLflow's scoring server takes a JSON object with one of ``instances`` or ``inputs`` (tensors: here
a list of images, each 784 pixel values or 28x28 of them), ``dataframe_split`` (``columns`` and
``data``: one row of pixel columns per image) or ``dataframe_records`` (one object of pixel columns
per image), and answers ``{"predictions": [...]}``. Clients written for it work unchanged.
"""

import hmac
import ipaddress

import numpy as np
from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE
from mnist_pipeline.tasks.core.errors import InputError

PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
# One request scores at most this many images (a JSON body of 10,000 images is about 30 MB).
MAX_IMAGES_PER_REQUEST = 10_000
# Request bodies larger than this are refused before they are read (an image upload or a JSON
# body of MAX_IMAGES_PER_REQUEST images fits).
MAX_BODY_BYTES = 64 * 1024 * 1024
FORMATS = ("instances", "inputs", "dataframe_split", "dataframe_records")
# Columns of a data frame that are not pixels (a labelled CSV's rows sent as they are).
LABEL_COLUMNS = ("label", "class", "target")
TOKEN_ENV = "MNIST_SERVE_TOKEN"


class RequestError(InputError):
    """A request the service cannot score: answered with ``status`` and the message, never a 500."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def images_from_request(payload: object) -> np.ndarray:
    """The ``(n, 28, 28)`` uint8 images of an MLflow scoring request (see the module docstring);
    dataset pixels, used as they are, as `mnist predict` uses an IDX file's."""
    if not isinstance(payload, dict):
        raise RequestError(f"the body is a JSON {type(payload).__name__}; send an object with one of "
                           f"{', '.join(FORMATS)} (MLflow's scoring format)")
    given = [key for key in FORMATS if key in payload]
    if len(given) != 1:
        found = ", ".join(given) or f"keys {_shown(', '.join(map(str, payload))) or 'none'}"
        raise RequestError(f"the body must hold exactly one of {', '.join(FORMATS)} (found {found})")
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        rows = _split_rows(value)
    elif key == "dataframe_records":
        rows = _record_rows(value)
    else:
        if isinstance(value, dict) and len(value) == 1:  # one named input tensor: {"images": [...]}
            value = next(iter(value.values()))
        rows = value
    return pixel_images(rows, key)


def pixel_images(rows: object, where: str) -> np.ndarray:
    """Images from nested lists of pixel values 0-255: ``(n, 784)``, ``(n, 28, 28)`` or with a
    channel axis of one, ``(n, 1, 28, 28)`` / ``(n, 28, 28, 1)``."""
    if not isinstance(rows, list) or not rows:
        raise RequestError(f"{where} must be a non-empty list of images (each 784 pixel values or 28x28 of them)")
    if len(rows) > MAX_IMAGES_PER_REQUEST:
        raise RequestError(f"{where} holds {len(rows):,} images; at most {MAX_IMAGES_PER_REQUEST:,} a request",
                           status=413)
    try:
        array = np.asarray(rows)
    except ValueError:  # ragged: lists of different lengths
        raise RequestError(f"{where}: the images have different shapes; each must be 784 pixel values or 28x28") from None
    if array.dtype.kind not in "iuf":
        raise RequestError(f"{where} holds the value {_shown(repr(_first_odd_value(rows)))}; "
                           "pixels are numbers from 0 to 255")
    shape = array.shape
    if shape[1:] in ((PIXELS,), IMAGE_SHAPE, (1, *IMAGE_SHAPE), (*IMAGE_SHAPE, 1)):
        images = array.reshape(len(array), *IMAGE_SHAPE)
    else:
        raise RequestError(f"{where} has shape {list(shape)}; each image must be 784 pixel values or 28x28 "
                           "(a batch of n images: [n, 784] or [n, 28, 28])")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 255:
        bad = images[~(np.isfinite(images) & (images >= 0) & (images <= 255))].flat[0].item()
        raise RequestError(f"{where} holds the pixel value {bad!r}; pixels are numbers from 0 to 255")
    return np.rint(images).astype(np.uint8)


def _split_rows(frame: object) -> list:
    if not isinstance(frame, dict) or not isinstance(frame.get("data"), list):
        raise RequestError("dataframe_split must be an object with `data` (a list of rows) and, optionally, `columns`")
    rows, columns = frame["data"], frame.get("columns")
    if columns is None:
        return rows
    if not isinstance(columns, list) or not all(isinstance(row, list) for row in rows):
        raise RequestError("dataframe_split: `columns` must be a list of names and `data` a list of rows")
    keep = [i for i, name in enumerate(columns) if str(name).lower() not in LABEL_COLUMNS]
    if len(keep) != PIXELS:
        raise RequestError(f"dataframe_split has {len(keep)} pixel columns; 784 are expected, in row-major order")
    if any(len(row) != len(columns) for row in rows):
        raise RequestError(f"dataframe_split: every row must hold {len(columns)} values, one per column")
    return [[row[i] for i in keep] for row in rows]


def _record_rows(records: object) -> list:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError("dataframe_records must be a list of objects, one per image, of pixel columns")
    rows = []
    for record in records:
        pixels = [value for name, value in record.items() if str(name).lower() not in LABEL_COLUMNS]
        if len(pixels) != PIXELS:
            raise RequestError(f"dataframe_records: a record has {len(pixels)} pixel columns; 784 are expected")
        rows.append(pixels)
    return rows


def _first_odd_value(rows) -> object:
    """The first value that is no pixel: not a number, or a number out of 0..255 (an integer too
    large for numpy's, 10**30, makes an array of objects, as a string does)."""
    stack = [rows]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(reversed(value))
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 255:
            return value
    return None


def _shown(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def token_matches(given: str | None, expected: str | None) -> bool:
    """Whether a request may pass: no token is set, or it sent the same one (compared in
    constant time)."""
    if not expected:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str) -> None:
    """A token is printable ASCII without spaces: what an HTTP header carries unchanged."""
    if not token or not all(33 <= ord(c) <= 126 for c in token):
        raise InputError("the serving token must be printable ASCII without spaces (e.g. from "
                         "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)")


def check_exposure(host: str, token: str | None) -> None:
    """A service reachable from other machines must ask for a token."""
    if not is_loopback(host) and not token:
        raise InputError(f"--host {host} makes the service reachable from other machines; give it a token "
                         f"(--token or ${TOKEN_ENV}) that clients send as `Authorization: Bearer TOKEN`")
