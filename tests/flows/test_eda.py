"""The eda flow end to end under Prefect's test harness, and its report in a real browser."""

import json
import os

import pytest
from mnist_pipeline.flows.config import EdaConfig, IngestConfig
from mnist_pipeline.flows.eda import eda
from mnist_pipeline.flows.ingest import ingest
from mnist_pipeline.storage import datasets
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.digits import concat
from mnist_pipeline.tasks.core.eda.report import TITLES

from tests.browser import chromium_page
from tests.conftest import make_digits, write_idx_folder

pytestmark = pytest.mark.usefixtures("prefect_harness")
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "test-artifacts")

SECTION_IDS = ("key-numbers", *TITLES)  # the report's sections, in order


def report_files(report_url):
    folder = os.path.dirname(report_url)
    return {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in os.listdir(folder)}


def test_report_is_written_once_per_version_and_reproducible(home, idx_folder):
    version = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}")).version
    outcome = eda(EdaConfig(home=home))
    assert outcome.version == version
    assert outcome.report.startswith(os.path.join(home, "reports", "eda", version))
    page = open(outcome.report).read()
    for section in SECTION_IDS:
        assert f"id='{section}'" in page
    assert "No previous version of this source" in page
    files = report_files(outcome.report)
    assert {f"{s}.png" for s in SECTION_IDS if s not in ("key-numbers", "drift")} <= set(files)
    key_numbers = json.load(open(os.path.join(os.path.dirname(outcome.report), "key_numbers.json")))
    rows = datasets.read_manifest(StorageRoot(home), version).rows
    assert key_numbers["rows (train / validation / test)"] == f"{rows['train']:,} / {rows['validation']:,} / 100"
    assert key_numbers["validation"] == "passed"

    again = eda(EdaConfig(home=home, dataset=version[:6]))
    assert again.report == outcome.report and report_files(outcome.report) == files

    pngs = {n: open(os.path.join(os.path.dirname(outcome.report), n), "rb").read() for n in files if n.endswith(".png")}
    eda(EdaConfig(home=home, force=True))
    redrawn = {n: open(os.path.join(os.path.dirname(outcome.report), n), "rb").read() for n in pngs}
    assert redrawn == pngs  # seeded: the same figures, byte for byte

    # A report deleted from storage is drawn again, not answered from Prefect's result cache.
    import shutil

    shutil.rmtree(os.path.dirname(outcome.report))
    assert eda(EdaConfig(home=home)).report == outcome.report and os.path.isfile(outcome.report)


def test_what_changed_since_the_previous_version_of_the_same_source(home, idx_folder):
    first = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}")).version
    # the next night the folder holds 200 more training images
    write_idx_folder(idx_folder, concat([make_digits(100, seed=1), make_digits(20, seed=9, first_id=1000)]),
                     make_digits(10, seed=2))
    second = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}")).version
    outcome = eda(EdaConfig(home=home, dataset=second))
    page = open(outcome.report).read()
    assert "No previous version" not in page and "<section id='drift'><h2>What changed since the previous version" in page
    key_numbers = json.load(open(os.path.join(os.path.dirname(outcome.report), "key_numbers.json")))
    assert key_numbers["previous version"] == first
    assert key_numbers["images added / removed since the previous version"] == "200 / 0"
    assert outcome.changes.previous_version == first and outcome.changes.added == (20,) * 10
    assert 0.3 < outcome.changes.domain_auc < 0.7  # the same kind of images
    assert "<th>added</th><th>share before</th><th>share now</th>" in page
    # the stored report keeps what changed: a rerun finds both
    assert eda(EdaConfig(home=home, dataset=second)).changes == outcome.changes


def test_eda_leaves_artifacts_in_prefect(home, idx_folder):
    import httpx
    from prefect.settings import PREFECT_API_URL

    ingest(IngestConfig(home=home, source=f"idx:{idx_folder}"))
    outcome = eda(EdaConfig(home=home))
    # Plain HTTP against the server's API: Prefect 3.8's client sends nulls that its own
    # server rejects under current fastapi/pydantic releases.
    found = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["eda-report", "eda-report-html"]}},
              "limit": 50, "offset": 0, "sort": "CREATED_DESC"},
    ).raise_for_status().json()
    # Prefect 3.8 stores a link artifact as markdown holding the link.
    assert {a["key"] for a in found} == {"eda-report", "eda-report-html"}
    markdown = next(a["data"] for a in found if a["key"] == "eda-report")
    assert "| validation | passed |" in markdown and "## Class distribution" in markdown
    assert markdown.count("](data:image/png;base64,") == 3  # the key figures, inline
    links = [a["data"] for a in found if a["key"] == "eda-report-html"]
    assert any(outcome.report in str(link) for link in links)


def test_fashion_mnist_report_opens_in_headless_chromium(home, fashion_dir):
    ingest(IngestConfig(home=home, source="fashion-mnist"))
    outcome = eda(EdaConfig(home=home))
    with chromium_page() as page:
        page.goto(f"file://{outcome.report}")
        sizes = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        sections = page.eval_on_selector_all("section", "s => s.map(x => x.id)")
        text = page.inner_text("#key-numbers")
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "eda-report.png"), full_page=True)
    assert len(sizes) == 7 and all(done and w > 0 and h > 0 for done, w, h in sizes), sizes
    assert sections == list(SECTION_IDS)
    rows = datasets.read_manifest(StorageRoot(home), outcome.version).rows
    assert f"{rows['train']:,} / {rows['validation']:,} / 10,000" in text
