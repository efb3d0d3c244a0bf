import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tasks.core.images import ImageError, load_image


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_dark_digit_on_light_paper_becomes_mnist_like():
    photo = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(photo).line([(200, 50), (200, 350)], fill="black", width=30)  # an off-centre "1"
    digit = load_image(png(photo, "JPEG"), "one.jpg")
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # black background
    rows, cols = np.nonzero(digit > 50)
    assert rows.max() - rows.min() + 1 <= 21  # fits the 20-pixel box
    # centred by its centre of mass
    mass = digit.astype(float)
    centre = (np.indices(digit.shape) * mass).reshape(2, -1).sum(1) / mass.sum()
    assert np.allclose(centre, (14, 14), atol=1.0)


def test_blank_and_non_images_are_clear_errors():
    with pytest.raises(ImageError, match="blank"):
        load_image(png(Image.new("L", (50, 50), 255)), "white.png")
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"not an image at all", "notes.png")


def test_an_image_too_large_to_be_a_digit_is_refused_from_its_header():
    huge = png(Image.new("1", (13_000, 13_000), 1))  # 169 Mpx: below PIL's own bomb limit
    with pytest.raises(ImageError, match="13,000x13,000 pixels, more than the 50,000,000"):
        load_image(huge, "scan.png")
