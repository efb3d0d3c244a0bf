"""Decoding of the IDX file format that MNIST, Fashion-MNIST and their kin are published in.

An IDX file is two zero bytes, a type code, the number of dimensions, one big-endian uint32
per dimension, then the values in C order. The files are usually gzipped.
"""

import gzip
import math
import struct
import zlib

import numpy as np
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.errors import SourceError

# IDX type codes and the numpy dtypes they mean (multi-byte values are big-endian).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


GZIP_MAGIC = b"\x1f\x8b"


def gunzip_if_needed(data: bytes, name: str, max_bytes: int | None = None) -> bytes:
    """Return ``data`` decompressed when it is gzip, as it is otherwise.

    With ``max_bytes`` the output is bounded *while* decompressing: a small file that expands
    to gigabytes (a decompression bomb) stops at the limit instead of filling memory.
    """
    if data[:2] != GZIP_MAGIC:
        return data
    chunks, size = [], 0
    member = data
    try:
        while True:  # one gzip member after another, as gzip.decompress reads them
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = member
            while pending:
                room = None if max_bytes is None else max_bytes + 1 - size
                chunk = inflater.decompress(pending, room) if room else inflater.decompress(pending)
                chunks.append(chunk)
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise SourceError(
                        f"{name} expands to more than {max_bytes:,} bytes when decompressed, more than "
                        "the dataset limits allow (see `max_images_per_split`); a decompression bomb "
                        "or not a digit dataset"
                    )
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            member = inflater.unused_data
            if not member.strip(b"\x00"):  # trailing zero padding, as gzip allows
                return b"".join(chunks)
            if member[:2] != GZIP_MAGIC:
                raise gzip.BadGzipFile("trailing bytes after the gzip stream are not another gzip member")
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise SourceError(
            f"{name}: the gzip stream is truncated or corrupt ({error}); "
            "fetch the file again or point the pipeline at an intact copy."
        ) from error


def decode_idx(data: bytes, name: str, expected_ndim: int | None = None) -> np.ndarray:
    """Decode one IDX file (gzipped or not) into an array of its declared shape."""
    data = gunzip_if_needed(data, name)
    if not data:
        raise SourceError(f"{name} is empty (0 bytes); expected an IDX file.")
    if len(data) < 4:
        raise SourceError(f"{name} is {len(data)} bytes long, too short for an IDX header.")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or type_code not in IDX_DTYPES or ndim == 0:
        raise SourceError(
            f"{name}: magic number 0x{magic:08x} is not an IDX header "
            "(expected 0x0000TTDD: two zero bytes, a type code, the number of dimensions)."
        )
    if expected_ndim is not None and ndim != expected_ndim:
        wanted = IMAGES_MAGIC if expected_ndim == 3 else LABELS_MAGIC
        raise SourceError(
            f"{name}: magic number 0x{magic:08x} declares {ndim} dimension(s), expected "
            f"{expected_ndim} (magic 0x{wanted:08x}); is this the right file for its role?"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SourceError(f"{name}: header truncated ({len(data)} of {header} bytes).")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a forged header cannot overflow it
    found = len(data) - header
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise SourceError(
            f"{name}: {problem}: shape {dims} of {dtype} needs {expected} data bytes, "
            f"found {found}."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def decode_idx_pair(images: bytes, labels: bytes, name: str, first_id: int = 0) -> Digits:
    """Decode an images file and its labels file into :class:`Digits`."""
    image_array = decode_idx(images, f"{name} images", expected_ndim=3)
    label_array = decode_idx(labels, f"{name} labels", expected_ndim=1)
    if len(image_array) != len(label_array):
        raise SourceError(
            f"{name}: {len(image_array)} images but {len(label_array)} labels; "
            "the two files must come from the same release."
        )
    ids = np.arange(first_id, first_id + len(label_array), dtype=np.int64)
    return Digits(image_array, label_array, ids)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (the inverse of :func:`decode_idx`, used to write test files)."""
    if array.dtype != np.uint8:
        raise ValueError(f"encode_idx writes uint8 arrays only, got {array.dtype}")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()
