import gzip
import struct
import zlib

import numpy as np
import pytest
from mnist_pipeline.tasks.core.errors import SourceError
from mnist_pipeline.tasks.core.idx import decode_idx, decode_idx_pair, encode_idx, gunzip_if_needed

from tests.conftest import make_digits


def numpy_oracle(data: bytes) -> np.ndarray:
    """An independent reading of a uint8 IDX file: header by struct, body by numpy."""
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


def test_decodes_images_like_the_numpy_oracle():
    images = make_digits(5).images
    raw = encode_idx(images)
    decoded = decode_idx(raw, "images")
    assert decoded.shape == (50, 28, 28)
    np.testing.assert_array_equal(decoded, numpy_oracle(raw))
    np.testing.assert_array_equal(decoded, images)


def test_gzipped_and_plain_decode_the_same():
    labels = np.arange(10, dtype=np.uint8)
    raw = encode_idx(labels)
    np.testing.assert_array_equal(decode_idx(gzip.compress(raw), "l"), decode_idx(raw, "l"))


@pytest.mark.parametrize(
    ("code", "dtype"), [(0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8"), (0x09, "i1")]
)
def test_decodes_every_idx_type_code_big_endian(code, dtype):
    values = np.array([[1, -2], [300, 4]] if code != 0x09 else [[1, -2], [3, 4]], dtype=dtype)
    raw = bytes([0, 0, code, 2]) + struct.pack(">II", 2, 2) + values.tobytes()
    decoded = decode_idx(raw, "x")
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values.astype(values.dtype.newbyteorder("=")))


def test_pair_gives_ids_from_first_id():
    digits = make_digits(2)
    pair = decode_idx_pair(encode_idx(digits.images), encode_idx(digits.labels), "t", first_id=7)
    np.testing.assert_array_equal(pair.sample_ids, np.arange(7, 27))
    np.testing.assert_array_equal(pair.labels, digits.labels)


def test_truncated_gzip_is_a_clear_error():
    raw = gzip.compress(encode_idx(make_digits(3).images))
    with pytest.raises(SourceError, match="gzip stream is truncated or corrupt"):
        decode_idx(raw[: len(raw) // 2], "train images")


def test_truncated_payload_names_the_byte_counts():
    raw = encode_idx(make_digits(1).images)
    with pytest.raises(SourceError, match=r"truncated: shape \(10, 28, 28\).*needs 7840 data bytes, found 7000"):
        decode_idx(raw[: 16 + 7000], "train images")


def test_wrong_magic_number_is_named():
    raw = b"\x12\x34\x08\x03" + encode_idx(make_digits(1).images)[4:]
    with pytest.raises(SourceError, match="magic number 0x12340803 is not an IDX header"):
        decode_idx(raw, "train images")


def test_labels_file_in_the_images_role_is_rejected():
    labels = encode_idx(np.zeros(5, dtype=np.uint8))
    with pytest.raises(SourceError, match="0x00000801 declares 1 dimension.*expected 3 .*0x00000803"):
        decode_idx(labels, "train images", expected_ndim=3)


def test_image_and_label_counts_must_match():
    digits = make_digits(2)
    with pytest.raises(SourceError, match="20 images but 19 labels"):
        decode_idx_pair(encode_idx(digits.images), encode_idx(digits.labels[:-1]), "train")


@pytest.mark.parametrize("raw", [b"", gzip.compress(b"", mtime=0)], ids=["plain", "gzipped"])
def test_empty_file_is_a_clear_error(raw):
    with pytest.raises(SourceError, match="is empty"):
        decode_idx(raw, "train images")


def test_non_28x28_images_decode_for_validation_to_reject():
    images = np.zeros((3, 32, 32), dtype=np.uint8)
    assert decode_idx(encode_idx(images), "x").shape == (3, 32, 32)


def gzip_of_zeros(total: int, chunk: int = 1 << 20) -> bytes:
    """A small gzip stream that expands to ``total`` zero bytes (a decompression bomb)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    parts = [compressor.compress(zeros) for _ in range(total // chunk)]
    return b"".join(parts) + compressor.flush()


def test_a_decompression_bomb_is_stopped_while_decompressing():
    import tracemalloc

    bomb = gzip_of_zeros(400 << 20)  # 400 MiB of zeros in about 400 kB
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    with pytest.raises(SourceError, match="expands to more than 10,000,000 bytes"):
        gunzip_if_needed(bomb, "train-images-idx3-ubyte.gz", max_bytes=10_000_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40 << 20, f"peak {peak / 2**20:.0f} MiB: the stream was not stopped at the limit"


def test_bounded_gunzip_matches_gzip_and_its_edge_cases():
    data = np.random.default_rng(0).integers(0, 255, 100_000, dtype=np.uint8).tobytes()
    packed = gzip.compress(data)
    assert gunzip_if_needed(packed, "x", max_bytes=len(data)) == data  # exactly at the limit
    with pytest.raises(SourceError, match="expands to more than"):
        gunzip_if_needed(packed, "x", max_bytes=len(data) - 1)
    assert gunzip_if_needed(gzip.compress(b"ab") + gzip.compress(b"cd"), "two members") == b"abcd"
    assert gunzip_if_needed(gzip.compress(b"ab") + b"\0" * 8, "zero padding") == b"ab"
    with pytest.raises(SourceError, match="truncated or corrupt"):
        gunzip_if_needed(gzip.compress(b"ab") + b"trailing garbage", "garbage")


@pytest.mark.parametrize("raw, fragment", [
    (b"\x00\x00\x08", r"train images is 3 bytes long, too short for an IDX header"),
    (b"\x00\x00\x08\x03" + struct.pack(">2I", 10, 28), r"train images: header truncated \(12 of 16 bytes\)"),
])
def test_a_file_cut_inside_its_header_names_how_much_is_there(raw, fragment):
    with pytest.raises(SourceError, match=fragment):
        decode_idx(raw, "train images")


def test_trailing_bytes_are_named_like_missing_ones():
    raw = encode_idx(make_digits(1).images) + b"\x00" * 5
    with pytest.raises(SourceError, match=r"has trailing bytes: .* needs 7840 data bytes, found 7845"):
        decode_idx(raw, "train images")


def test_a_forged_header_whose_sizes_overflow_64_bits_is_a_clear_error():
    # 2**31 x 2**31 x 4 images wrap to 0 bytes in int64 arithmetic; it once passed the size check
    # and failed in numpy's reshape, a traceback instead of an error naming the file.
    raw = struct.pack(">I3I", 0x00000803, 2**31, 2**31, 4)
    with pytest.raises(SourceError, match=r"upload.idx: truncated: shape \(2147483648, 2147483648, 4\)"):
        decode_idx(raw, "upload.idx")


def test_encode_idx_writes_uint8_only():
    with pytest.raises(ValueError, match="uint8 arrays only, got float32"):
        encode_idx(np.zeros(3, np.float32))
