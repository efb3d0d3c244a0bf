"""Turning image files into the 28x28 white-on-black images a model was trained on.

``auto`` (the default) treats an image by what it already is:

- a 28x28 single-channel image is a dataset image: its pixels are used as they are, inverted
  only when its background is light (a dark digit saved on white);
- any other image is converted the way its dataset was made. MNIST digits were size-normalised
  into a 20x20 box (aspect kept) and centred by their centre of mass in 28x28 (``digit``);
  Fashion-MNIST items were trimmed, scaled so the longest edge is 28 and centred (``item``).
  Which one depends on the model's classes: the ten digits, or named classes.

``none`` uses the pixels as they are (they must be 28x28); ``digit`` always applies the digit
conversion. A transparent image (a canvas export: dark strokes on nothing) is laid on white first.
An image is single-channel by what it shows, not by its container: RGB or RGBA pixels whose
channels are equal are the greyscale image they show, and 16-bit greys are scaled to 8 bits.
"""

import io
from typing import Literal

import numpy as np

from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE
from mnist_pipeline.tasks.core.errors import InputError

Preprocess = Literal["auto", "none", "digit"]
PREPROCESS_MODES: tuple[str, ...] = ("auto", "none", "digit")
INK_THRESHOLD = 0.2  # share of the full range that counts as ink, after inversion
# A 48-megapixel phone photo is 8064x6048; anything larger is not a photo of a digit, and
# decoding it would take gigabytes (a 13,000x13,000 PNG took 3.3 GB), so it is refused from its
# header, before the pixels are decoded.
MAX_PIXELS = 50_000_000
# Single-channel modes deeper than 8 bits, which PIL's conversion to 8-bit clips instead of scaling.
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageError(InputError):
    """An input image cannot be read or holds no digit."""


def load_image(data: bytes, name: str, *, preprocess: Preprocess = "auto", digits: bool = True) -> np.ndarray:
    """A ``(28, 28)`` uint8 image for a model, from PNG/JPEG/... bytes of any size.

    ``digits`` says whether the model's classes are the ten digits (see the module docstring).
    """
    gray, single_channel = decode_gray(data, name)
    return prepare(gray, name, preprocess=preprocess, digits=digits, single_channel=single_channel)


def decode_gray(data: bytes, name: str) -> tuple[np.ndarray, bool]:
    """Grayscale pixels (float32, 0-255) of an image file as a viewer shows it (transparency laid
    on white, 16-bit depth scaled to 8), and whether those pixels are grey: one channel, or
    colour channels that are all equal. The same grey pixels are the same image, whether saved
    as 8-bit or 16-bit greyscale, RGB or RGBA."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"{name} is empty (0 bytes); give a PNG or JPEG image")
    try:
        with warnings.catch_warnings():  # PIL warns from 89 Mpx on; the size is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            _check_size(image.size, name)
            image.load()
            if image.mode in WIDE_MODES:
                return _wide_gray(image), True
            # Every other mode as RGBA (grey modes give equal channels, opaque where no alpha).
            rgba = image.convert("RGBA")
            if rgba.getextrema()[3][0] < 255:
                # A transparent background is no colour at all: lay it on white, as a viewer shows it.
                rgba = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            rgb = np.asarray(rgba)[..., :3]  # uint8: a fifth of the memory of floats
    except Image.DecompressionBombError as error:  # PIL's own, far higher limit, checked in open()
        raise ImageError(f"{name} has more pixels than the {MAX_PIXELS:,} a digit image may have ({error}); "
                         "scale it down first") from error
    except UnidentifiedImageError as error:
        raise ImageError(f"{name} is not an image file PIL can read ({len(data):,} bytes that are no PNG, "
                         "JPEG, BMP, GIF, WebP or TIFF); give PNG or JPEG images") from error
    except OSError as error:
        raise ImageError(f"{name} cannot be decoded ({error}); give PNG or JPEG images") from error
    grey = bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))
    if grey:
        return rgb[..., 0].astype(np.float32), True
    # ITU-R 601 luma, the weights of PIL's convert("L").
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32), False


def _wide_gray(image) -> np.ndarray:
    """16-bit (or 32-bit integer, float) greyscale pixels on the 0-255 scale of 8-bit ones."""
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and pixels.max(initial=0) > 255):
        pixels = pixels / 257  # 65535 -> 255: the same grey at 16 bits as at 8
    return np.clip(pixels, 0, 255).astype(np.float32)


def prepare(gray: np.ndarray, name: str = "image", *, preprocess: Preprocess = "auto", digits: bool = True,
            single_channel: bool = True) -> np.ndarray:
    """The ``(28, 28)`` uint8 image a model reads, from grayscale pixels (see the module docstring)."""
    if preprocess not in PREPROCESS_MODES:
        raise ImageError(f"unknown preprocessing {preprocess!r}; choose from {', '.join(PREPROCESS_MODES)}")
    if preprocess == "none":
        if gray.shape != IMAGE_SHAPE:
            raise ImageError(f"{name} is {gray.shape[1]}x{gray.shape[0]} pixels; --preprocess none needs "
                             f"{IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0]} (use auto or digit to convert it)")
        return _to_uint8(gray)
    if preprocess == "auto" and gray.shape == IMAGE_SHAPE and single_channel:
        return _to_uint8(_white_on_black(gray))
    if preprocess == "digit" or digits:
        return to_mnist(gray, name)
    return to_item(gray, name)


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """MNIST's digit conversion: ink cropped, fitted into 20x20, centred by centre of mass in 28x28."""
    from PIL import Image

    small = _cropped_ink(gray, name)
    scale = 20 / max(small.shape)
    height, width = max(1, round(small.shape[0] * scale)), max(1, round(small.shape[1] * scale))
    small = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.LANCZOS), np.float32)
    canvas = np.zeros(IMAGE_SHAPE, np.float32)
    total = small.sum()
    cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(axis=1) / total) if total else (height / 2, width / 2)
    top = int(np.clip(round(IMAGE_SHAPE[0] / 2 - cy), 0, IMAGE_SHAPE[0] - height))
    left = int(np.clip(round(IMAGE_SHAPE[1] / 2 - cx), 0, IMAGE_SHAPE[1] - width))
    canvas[top : top + height, left : left + width] = small
    return _to_uint8(canvas)


def to_item(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Fashion-MNIST's conversion: trimmed to the item, longest edge scaled to 28, centred."""
    from PIL import Image

    small = _cropped_ink(gray, name)
    scale = IMAGE_SHAPE[0] / max(small.shape)
    height, width = max(1, round(small.shape[0] * scale)), max(1, round(small.shape[1] * scale))
    small = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.LANCZOS), np.float32)
    canvas = np.zeros(IMAGE_SHAPE, np.float32)
    top, left = (IMAGE_SHAPE[0] - height) // 2, (IMAGE_SHAPE[1] - width) // 2
    canvas[top : top + height, left : left + width] = small
    return _to_uint8(canvas)


def _white_on_black(gray: np.ndarray) -> np.ndarray:
    """Inverted when the background (judged by the border) is light: dark ink becomes bright."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 255 - gray if border.mean() > 127 else gray


def _cropped_ink(gray: np.ndarray, name: str) -> np.ndarray:
    """White-on-black pixels stretched to 0-255 and cropped to what is not background."""
    if gray.size == 0:
        raise ImageError(f"{name} is empty")
    gray = _white_on_black(gray)
    low, high = float(gray.min()), float(gray.max())
    if high - low < 1:
        raise ImageError(f"{name} is blank (one colour): nothing to classify")
    gray = (gray - low) / (high - low) * 255
    rows, cols = np.nonzero(gray > INK_THRESHOLD * 255)
    return gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _check_size(size: tuple[int, int], name: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name} is {width:,}x{height:,} pixels, more than the {MAX_PIXELS:,} a digit "
                         "image may have; scale it down first")
