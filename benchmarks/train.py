"""Benchmark: the four model families on the full Fashion-MNIST (or MNIST), time / memory / accuracy.

Ingests the source into a temporary storage root (not timed), then, each in a fresh process:

1. every family alone, on all cores: training time, test accuracy, time to predict the test
   split, batch throughput (batches of 1,000) and one-image latency, peak memory;
2. the ``train`` flow as the pipeline runs it (families in parallel, threads capped per family)
   and one after another (one family at a time, all cores): wall time and peak memory;
3. optionally (``--train-all``) the whole ``mnist train-all`` command.

    .venv/bin/python benchmarks/train.py [--source fashion-mnist] [--families logreg,svm] [--skip-flows]

Targets (README): Fashion-MNIST LogReg >= 84.5% in <= 15 s, SVM >= 89.5% with fit <= 3 min and
prediction of 10k <= 30 s, MLP >= 89% in <= 30 s, CNN >= 92% in <= 2 min; train-all <= 8 min and
< 4 GiB. On MNIST: 92.5% / 98.4% / 98.2% / 99.4%.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

TARGETS = {
    "fashion-mnist": {"logreg": (0.845, 15), "svm": (0.895, 180), "mlp": (0.89, 30), "cnn": (0.92, 120)},
    "mnist": {"logreg": (0.925, 15), "svm": (0.984, 180), "mlp": (0.982, 30), "cnn": (0.994, 120)},
}


def run_measured(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run a command; its wall time, peak RSS (MiB) and stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(command)} failed with status {status}:\n{output}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def family_alone(home: str, version: str, family: str, threads: int) -> None:
    """(child process) Train one family on all its threads, then score the test split."""
    import torch
    from threadpoolctl import threadpool_limits

    from storage import datasets
    from storage.root import StorageRoot
    from tasks.core.models import ModelConfigs
    from tasks.core.training import fit_family

    torch.set_num_threads(threads)
    root = StorageRoot(home)
    splits = {s: datasets.read_split(root, version, s) for s in ("train", "validation", "test")}
    with threadpool_limits(threads):
        model, report = fit_family(family, ModelConfigs().of(family), splits["train"], splits["validation"], seed=0)
        started = time.perf_counter()
        predicted = model.predict(splits["test"].images)
        predict_s = time.perf_counter() - started
        from tasks.core.evaluation import speed

        throughput = speed(model, splits["test"].images)
        throughput.pop("probabilities")
    print(json.dumps({
        "train_s": report.seconds, "predict_s": predict_s, **throughput,
        "validation": report.validation_accuracy,
        "test": float((predicted == splits["test"].labels).mean()),
        "size_kb": sum(len(v) for v in model.to_files().values()) / 1024,
    }))


def train_flow(home: str, version: str, families: list[str], parallelism: int, threads: int) -> None:
    """(child process) The train flow, forced to retrain, under a given parallelism."""
    from flows.config import TrainConfig, TrainSettings
    from flows.runners import training_runner
    from flows.train import train

    settings = TrainSettings(models=families, parallelism=parallelism, threads_per_model=threads)
    started = time.perf_counter()
    state = train.with_options(task_runner=training_runner(settings))(
        TrainConfig(home=home, dataset=version, force=True, settings=settings), return_state=True
    )
    outcome = state.result(raise_on_failure=False)
    print(json.dumps({"flow_s": time.perf_counter() - started, "failed": outcome.failed,
                      "trained": {f: s["train_seconds"] for f, s in outcome.trained.items()}}))


def ingest(home: str, source: str) -> str:
    from flows.config import IngestConfig
    from flows.ingest import ingest as ingest_flow

    return ingest_flow(IngestConfig(home=home, source=source)).version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="fashion-mnist")
    parser.add_argument("--families", default="logreg,svm,mlp,cnn")
    parser.add_argument("--skip-flows", action="store_true", help="only the families one by one")
    parser.add_argument("--skip-families", action="store_true", help="only the flows")
    parser.add_argument("--train-all", action="store_true", help="also time `mnist train-all`")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if args.child:
        kind, home, version, *rest = args.child
        if kind == "family":
            family_alone(home, version, rest[0], int(rest[1]))
        else:
            train_flow(home, version, rest[0].split(","), int(rest[1]), int(rest[2]))
        return

    families = args.families.split(",")
    cores = os.cpu_count() or 1
    targets = TARGETS.get(args.source, TARGETS["fashion-mnist"])
    me = [sys.executable, os.path.abspath(__file__), "--child"]
    with tempfile.TemporaryDirectory() as home:
        _, _, output = run_measured([sys.executable, "-c", f"import sys; sys.path.insert(0, {os.getcwd()!r}); "
                                     f"from benchmarks.train import ingest; print(ingest({home!r}, {args.source!r}))"])
        version = output.strip().splitlines()[-1]
        print(f"{args.source}: dataset {version}, {cores} cores")
        if not args.skip_families:
            print(f"\n{'family':<7} {'train s':>8} {'target':>7} {'test acc':>9} {'target':>7} "
                  f"{'valid acc':>9} {'predict 10k s':>13} {'images/s':>9} {'latency ms':>10} {'size KiB':>9} {'peak MiB':>9}")
            for family in families:
                _, rss, output = run_measured(me + ["family", home, version, family, str(cores)])
                r = json.loads(output.strip().splitlines()[-1])
                accuracy_target, seconds_target = targets[family]
                print(f"{family:<7} {r['train_s']:8.1f} {seconds_target:7d} {r['test']:9.4f} {accuracy_target:7.3f} "
                      f"{r['validation']:9.4f} {r['predict_s']:13.2f} {r['throughput_images_per_s']:9.0f} "
                      f"{r['latency_ms_one_image']:10.2f} {r['size_kb']:9.0f} {rss:9.0f}", flush=True)
        if not args.skip_flows:
            print(f"\n{'train flow':<34} {'wall s':>7} {'peak MiB':>9}  per family (s)")
            for label, parallelism, threads in (
                (f"parallel ({min(cores, len(families))} at once, 1 thread each)", min(cores, len(families)), max(1, cores // min(cores, len(families)))),
                (f"one after another ({cores} threads)", 1, cores),
            ):
                wall, rss, output = run_measured(me + ["flow", home, version, ",".join(families), str(parallelism), str(threads)])
                r = json.loads(output.strip().splitlines()[-1])
                per = ", ".join(f"{f} {s:.0f}" for f, s in r["trained"].items())
                print(f"{label:<34} {r['flow_s']:7.1f} {rss:9.0f}  {per}{'  FAILED ' + str(r['failed']) if r['failed'] else ''}", flush=True)
        if args.train_all:
            wall, rss, _ = run_measured(
                [os.path.join(os.path.dirname(sys.executable), "mnist"), "train-all", "--home", home,
                 "--source", args.source, "--force", "--no-progress"])
            print(f"\nmnist train-all --force (ingest, EDA, training; temporary Prefect server): "
                  f"{wall:.1f} s wall, peak {rss:.0f} MiB")


if __name__ == "__main__":
    main()
