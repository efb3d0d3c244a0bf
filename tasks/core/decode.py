"""Decoding a fetched source's bytes into its official splits."""

import hashlib

from tasks.core.csv_digits import decode_digits_csv
from tasks.core.digits import Digits
from tasks.core.errors import SourceError
from tasks.core.idx import decode_idx_pair, gunzip_if_needed
from tasks.core.sources import SourceKind


def decode_source(
    kind: SourceKind,
    files: dict[str, bytes],
    name: str,
    expected_payload_sha256: dict[str, str] | None = None,
) -> dict[str, Digits]:
    """``{"train": ..., "test": ...}`` for IDX sources, ``{"train": ...}`` for CSV sources.

    ``expected_payload_sha256`` checks the decompressed bytes of each file, for copies whose
    compressed bytes differ from upstream's (an OS package that re-gzipped them).
    """
    if kind == "csv":
        return {"train": decode_digits_csv(files["train_csv"], name, layout="kaggle")}
    if kind == "mnist-sample":
        return {"train": decode_digits_csv(files["train_csv"], name, layout="label-last")}
    payloads = {}
    for role, data in files.items():
        payload = gunzip_if_needed(data, f"{name} {role}")
        expected = (expected_payload_sha256 or {}).get(role)
        if expected and hashlib.sha256(payload).hexdigest() != expected:
            raise SourceError(
                f"{name} {role}: content differs from the published {kind} release "
                f"(sha256 of the decompressed file is not {expected}); reinstall it or use "
                "--source idx:DIR to ingest it as an unknown IDX dataset."
            )
        payloads[role] = payload
    train = decode_idx_pair(payloads["train_images"], payloads["train_labels"], f"{name} train")
    test = decode_idx_pair(
        payloads["test_images"], payloads["test_labels"], f"{name} test", first_id=len(train)
    )
    return {"train": train, "test": test}
