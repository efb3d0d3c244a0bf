import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_pipeline.tasks.core.images import ImageError, load_image


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


def test_blank_empty_and_non_images_are_clear_errors_that_name_the_file():
    with pytest.raises(ImageError, match="blank"):
        load_image(png(Image.new("L", (50, 50), 255)), "white.png")
    with pytest.raises(ImageError, match="notes.png is not an image file PIL can read") as raised:
        load_image(b"not an image at all", "notes.png")
    assert "object at 0x" not in str(raised.value) and "BytesIO" not in str(raised.value)
    with pytest.raises(ImageError, match=r"^empty.png is empty \(0 bytes\)"):
        load_image(b"", "empty.png")
    with pytest.raises(ImageError, match="half.png cannot be decoded"):
        noise = np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)
        load_image(png(Image.fromarray(noise))[:1500], "half.png")


@pytest.mark.parametrize("digits", [True, False])
def test_the_same_grey_pixels_are_one_image_in_any_container(digits):
    """8-bit and 16-bit greyscale, RGB and opaque RGBA of the same 28x28 pixels: the same input."""
    rng = np.random.default_rng(0)
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 9:19] = rng.integers(80, 256, (16, 10))  # a grey item on black, as Fashion-MNIST's are
    containers = {
        "L": Image.fromarray(pixels),
        "I;16": Image.fromarray(pixels.astype("<u2") * 257),
        "RGB": Image.fromarray(np.stack([pixels] * 3, -1)),
        "RGBA": Image.fromarray(np.dstack([pixels] * 3 + [np.full((28, 28), 255, np.uint8)])),
        "P": Image.fromarray(pixels).convert("P"),
    }
    seen = {mode: load_image(png(image), f"{mode}.png", digits=digits) for mode, image in containers.items()}
    for mode, image in seen.items():
        np.testing.assert_array_equal(image, pixels, err_msg=mode)
    # colour that is not grey is still converted the way the model's dataset was made
    tinted = np.stack([pixels, pixels // 2, pixels // 3], -1)
    assert load_image(png(Image.fromarray(tinted)), "tinted.png", digits=digits).shape == (28, 28)


def test_an_image_too_large_to_be_a_digit_is_refused_from_its_header():
    huge = png(Image.new("1", (13_000, 13_000), 1))  # 169 Mpx: below PIL's own bomb limit
    with pytest.raises(ImageError, match="13,000x13,000 pixels, more than the 50,000,000"):
        load_image(huge, "scan.png")


def dataset_image() -> np.ndarray:
    """A 28x28 white-on-black image like those of MNIST-format datasets (an off-centre blob)."""
    image = np.zeros((28, 28), np.uint8)
    image[3:25, 2:12] = np.arange(10, dtype=np.uint8) * 25 + 20
    return image


def test_a_28x28_single_channel_image_is_used_as_it_is():
    image = dataset_image()
    np.testing.assert_array_equal(load_image(png(Image.fromarray(image)), "item.png"), image)
    # the same pixels dark on light (as saved from a drawing program): only inverted
    np.testing.assert_array_equal(load_image(png(Image.fromarray(255 - image)), "inverted.png"), image)
    for digits in (True, False):
        np.testing.assert_array_equal(load_image(png(Image.fromarray(image)), "x.png", digits=digits), image)


def test_none_keeps_pixels_and_digit_always_converts():
    image = dataset_image()
    np.testing.assert_array_equal(load_image(png(Image.fromarray(image)), "x.png", preprocess="none"), image)
    with pytest.raises(ImageError, match="is 40x30 pixels; --preprocess none needs 28x28"):
        load_image(png(Image.new("L", (40, 30))), "x.png", preprocess="none")
    converted = load_image(png(Image.fromarray(image)), "x.png", preprocess="digit")
    rows, cols = np.nonzero(converted > 50)
    assert rows.max() - rows.min() + 1 <= 21 and not np.array_equal(converted, image)


def test_other_sizes_follow_the_models_dataset_digits_or_items():
    item = Image.new("L", (300, 150), 255)
    ImageDraw.Draw(item).rectangle([60, 40, 240, 100], fill=0)  # a wide dark item on white paper
    as_item = load_image(png(item), "bag.png", digits=False)
    rows, cols = np.nonzero(as_item > 50)
    assert cols.max() - cols.min() + 1 == 28  # Fashion-MNIST: longest edge scaled to 28
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1  # centred
    as_digit = load_image(png(item), "bag.png", digits=True)
    rows, cols = np.nonzero(as_digit > 50)
    assert cols.max() - cols.min() + 1 <= 21  # MNIST: fitted into the 20x20 box


def test_a_transparent_canvas_export_is_laid_on_white():
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))  # transparent, and black underneath
    ImageDraw.Draw(canvas).line([(140, 40), (140, 240)], fill=(0, 0, 0, 255), width=24)
    digit = load_image(png(canvas), "drawing.png")
    opaque = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(opaque).line([(140, 40), (140, 240)], fill=0, width=24)
    np.testing.assert_array_equal(digit, load_image(png(opaque), "drawing-on-paper.png"))
    assert digit.max() == 255 and digit[:, :5].max() == 0


def test_an_image_past_pils_own_bomb_limit_is_the_same_clear_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL raises past twice this, in open()
    with pytest.raises(ImageError, match="poster.png has more pixels than the 50,000,000 a digit image may have"):
        load_image(png(Image.new("L", (20, 20), 255)), "poster.png")


def test_an_unknown_preprocessing_mode_lists_the_modes():
    with pytest.raises(ImageError, match="unknown preprocessing 'sharpen'; choose from auto, none, digit"):
        load_image(png(Image.new("L", (28, 28), 0)), "x.png", preprocess="sharpen")


def test_an_image_with_no_pixels_is_empty():
    from mnist_pipeline.tasks.core.images import prepare

    with pytest.raises(ImageError, match="^nothing.png is empty$"):
        prepare(np.zeros((0, 5), np.float32), "nothing.png", preprocess="digit")
