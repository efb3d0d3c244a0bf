"""Turning arbitrary images into MNIST-looking 28x28 digits, the way the training data was made.

MNIST digits are white on black, size-normalised to fit a 20x20 box (aspect kept) and centred
by their centre of mass in a 28x28 field. A photo or scan of a dark digit on light paper is
inverted, cropped to its ink, scaled and centred the same way.
"""

import io

import numpy as np

from tasks.core.digits import IMAGE_SHAPE
from tasks.core.errors import InputError

INK_THRESHOLD = 0.2  # share of the full range that counts as ink, after inversion
# A 48-megapixel phone photo is 8064x6048; anything larger is not a photo of a digit, and
# decoding it would take gigabytes (a 13,000x13,000 PNG took 3.3 GB), so it is refused from its
# header, before the pixels are decoded.
MAX_PIXELS = 50_000_000


class ImageError(InputError):
    """An input image cannot be read or holds no digit."""


def load_image(data: bytes, name: str) -> np.ndarray:
    """A ``(28, 28)`` uint8 digit from PNG/JPEG/... bytes of any size."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # PIL warns from 89 Mpx on; the size is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            _check_size(image.size, name)
            image.load()
            gray = np.asarray(image.convert("L"), dtype=np.float32)
    except Image.DecompressionBombError as error:  # PIL's own, far higher limit, checked in open()
        raise ImageError(f"{name} has more pixels than the {MAX_PIXELS:,} a digit image may have ({error}); "
                         "scale it down first") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ImageError(f"{name} is not an image PIL can read ({error}); give PNG or JPEG files") from error
    return to_mnist(gray, name)


def _check_size(size: tuple[int, int], name: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name} is {width:,}x{height:,} pixels, more than the {MAX_PIXELS:,} a digit "
                         "image may have; scale it down first")


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
    from PIL import Image

    if gray.size == 0:
        raise ImageError(f"{name} is empty")
    # Light background (judged by the border) means dark ink: invert to white on black.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 127:
        gray = 255 - gray
    low, high = float(gray.min()), float(gray.max())
    if high - low < 1:
        raise ImageError(f"{name} is blank (one colour): no digit to read")
    gray = (gray - low) / (high - low) * 255
    rows, cols = np.nonzero(gray > INK_THRESHOLD * 255)
    gray = gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = 20 / max(gray.shape)
    height, width = max(1, round(gray.shape[0] * scale)), max(1, round(gray.shape[1] * scale))
    small = np.asarray(Image.fromarray(gray.astype(np.uint8)).resize((width, height), Image.LANCZOS), np.float32)
    canvas = np.zeros(IMAGE_SHAPE, np.float32)
    total = small.sum()
    cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(axis=1) / total) if total else (height / 2, width / 2)
    top = int(np.clip(round(IMAGE_SHAPE[0] / 2 - cy), 0, IMAGE_SHAPE[0] - height))
    left = int(np.clip(round(IMAGE_SHAPE[1] / 2 - cx), 0, IMAGE_SHAPE[1] - width))
    canvas[top : top + height, left : left + width] = small
    return np.clip(canvas, 0, 255).astype(np.uint8)
