"""Reports: EDA reports under ``reports/eda/<dataset version>/<report key>/`` (index.html and the
PNGs), and the registry report ``reports/registry.html``.

The EDA report key names the report code that made it, so a new report version never reuses an
old report, and re-running the same code on the same dataset finds the report already there.
"""

from mnist_pipeline.storage.root import StorageRoot, is_directory_url, write_url_atomic
from mnist_pipeline.tasks.core.errors import InputError

AREA = "reports"
INDEX = "index.html"
SUMMARY = "key_numbers.json"
CHANGES = "changes.json"  # what the version changed since the previous one (absent: no previous version)


def eda_dir(root: StorageRoot, version: str, report_key: str) -> str:
    return root.join(AREA, "eda", version, report_key)


def find_eda_report(root: StorageRoot, version: str, report_key: str) -> str | None:
    """The URL of the report's HTML page, if that report was already written."""
    path = f"{eda_dir(root, version, report_key)}/{INDEX}"
    return root.url_of(path) if root.exists(path) else None


def write_eda_report(
    root: StorageRoot,
    version: str,
    report_key: str,
    html: str,
    figures: dict[str, bytes],
    key_numbers_json: str,
    changes_json: str | None = None,
) -> str:
    """Write the report atomically (staging, then rename) and return its HTML page's URL."""
    final = eda_dir(root, version, report_key)
    with root.staging_dir(AREA) as staging:
        for name, png in figures.items():
            with root.fs.open(f"{staging}/{name}.png", "wb") as handle:
                handle.write(png)
        for name, text in ((SUMMARY, key_numbers_json), (CHANGES, changes_json)):
            if text is not None:
                with root.fs.open(f"{staging}/{name}", "w", encoding="utf-8") as handle:
                    handle.write(text)
        with root.fs.open(f"{staging}/{INDEX}", "w", encoding="utf-8") as handle:
            handle.write(html)
        # Same report code and data give the same report: a forced redraw replaces the old one
        # (moved aside, the new one renamed in, then the old one deleted), never deleting first.
        root.publish_dir(staging, final, commit_file=INDEX, replace=True)
    return root.url_of(f"{final}/{INDEX}")


def eda_figures(root: StorageRoot, version: str, report_key: str) -> dict[str, bytes]:
    """The report's figures (PNG bytes by name)."""
    folder = eda_dir(root, version, report_key)
    return {
        path.rsplit("/", 1)[1][: -len(".png")]: root.read_bytes(path)
        for path in sorted(root.fs.glob(f"{folder}/*.png"))
    }


def read_eda_summary(root: StorageRoot, version: str, report_key: str) -> str:
    return root.read_bytes(f"{eda_dir(root, version, report_key)}/{SUMMARY}").decode()


def read_eda_changes(root: StorageRoot, version: str, report_key: str) -> str | None:
    """What the version changed since the previous one, as the report recorded it (None: nothing
    to compare with)."""
    path = f"{eda_dir(root, version, report_key)}/{CHANGES}"
    return root.read_bytes(path).decode() if root.exists(path) else None


REGISTRY_REPORT = "registry.html"


def write_registry_report(root: StorageRoot, html: str, output: str | None = None) -> str:
    """Write the registry report (atomically) to ``reports/registry.html``, or to ``output``;
    returns where it went."""
    if output is None:
        path = root.join(AREA, REGISTRY_REPORT)
        root.write_bytes_atomic(path, html.encode())
        return root.url_of(path)
    if is_directory_url(output):
        raise InputError(f"--output {output} is a directory; name the HTML file to write")
    return write_url_atomic(output, html.encode())
