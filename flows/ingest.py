"""The ``ingest`` flow: raw source -> validated, versioned Parquet dataset."""

from mnist_pipeline.flows.config import IngestConfig
from mnist_pipeline.tasks import ingest as steps
from mnist_pipeline.tasks.core import dataset
from mnist_pipeline.tasks.options import FLOW_RESULTS_AS_JSON
from prefect import flow


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"ingest-{steps.source_name(flow_run.parameters['config'].source)}"


@flow(name="ingest", flow_run_name=_run_name, log_prints=True, **FLOW_RESULTS_AS_JSON)
def ingest(config: IngestConfig = IngestConfig()) -> steps.Ingested:
    """Fetch a source, decode and split it, validate it with Great Expectations and publish it as a
    versioned Parquet dataset; an unchanged, intact source is reused without decoding."""
    store = config.store()
    settings = config.settings
    split_settings = settings.split_settings()
    source = steps.resolve_source(config.source)
    fetched = steps.fetch_source(source, store, settings.mirrors, settings.max_images_per_split,
                                 settings.class_names)
    fingerprint = dataset.source_fingerprint(fetched.checksums(), split_settings, fetched.meaning.as_dict())
    if not config.force:
        existing = steps.find_existing_version(store, fingerprint)
        if existing:
            damage = steps.verify_version(store, existing)
            if not damage:
                print(f"{source} is unchanged since dataset {existing}; nothing to do.")
                return steps.Ingested(existing, steps.REUSED)
            print(f"dataset {existing} is damaged; decoding {source} again to repair it.")
    decoded = steps.decode(
        fetched, settings.validation_fraction, settings.test_fraction, settings.seed,
        settings.max_images_per_split,
    )
    validated = steps.validate(decoded, source, settings.bounds(fetched.meaning.expected_rows))
    return steps.publish(store, fetched, decoded, validated, fingerprint, split_settings)
