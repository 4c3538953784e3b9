"""The ``convlens`` command (also ``python -m server.cli``).

    convlens audit --model digits_cnn --dataset digits --fail-on 'dead>5%'
    convlens compare --model digits_cnn epoch_01 epoch_03 epoch_10 epoch_30
    convlens models add --module mynet:MyNet --weights ckpt.pt --input-size 3,32,32 --labels labels.txt
    convlens weights pull alexnet vgg16 resnet152
    convlens microscope --model digits_cnn --dataset digits --layers features.3,features.5 --out site/

``models add`` writes a catalogue entry after a dry run (load + one forward); on any error it prints
one line, exits 2 and leaves the catalogue unchanged.

``weights pull`` downloads the official torchvision weights of zoo models (or the same file names under
``CONVLENS_WEIGHTS_MIRROR``), checks their SHA-256, stores them as safetensors under models/ and names them
under ``[weights]`` in the catalogue. It exits 2 on an id it cannot pull (before downloading anything)
and 3 when a download fails or a file's hash is wrong; what was pulled before the failure stays pulled.

``microscope`` exports a static HTML site of the layers' filters (an index per layer, a page per filter with
its top images and deconvnet crops, DeepVis images, audit statistics, flags, weights and correlated
filters) that opens from disk; it exits 2 on bad input, before any work.

``audit`` prints a readable summary and exits 0 when every gate passes, 1 when a gate fails,
2 on bad input (an unknown model, a threshold outside [0, 1], an unreadable gate...) and 3 when
the audit could not run (e.g. unreadable stored data), so that CI can fail a build on a neuron audit. Reports can be written with ``--json`` and ``--html``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from server.audit_report import render_html, render_json, summary_text
from server.audits import AuditRequest
from server.config import get_settings
from server.errors import ChecksumMismatchError, ConvLensError, DownloadFailedError, InvalidInputError
from server.services import Services

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_ERROR = 0, 1, 2, 3


def _threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"write NAME=VALUE, e.g. dead_share=0.01 (got '{text}')")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number (in '{text}')") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convlens", description="ConvLens from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    audit = sub.add_parser("audit", help="audit the neurons of a model on a dataset (CI gate with --fail-on)")
    audit.add_argument("--model", required=True, help="zoo model id, e.g. digits_cnn or efficientnet_lite0")
    audit.add_argument("--dataset", required=True, help="dataset id, e.g. the built-in 'digits'")
    audit.add_argument("--fail-on", default=None, help="gates, e.g. 'dead>5%%' or 'dead>5%%,redundant>=3'")
    audit.add_argument(
        "--threshold",
        action="append",
        type=_threshold,
        default=[],
        metavar="NAME=VALUE",
        help="override a default threshold (repeatable), e.g. --threshold dead_share=0.01",
    )
    audit.add_argument(
        "--max-images", type=int, default=None, help="audit an even spread of this many images"
    )
    audit.add_argument("--batch-size", type=int, default=64)
    audit.add_argument(
        "--what-if", action="store_true", help="zero the flagged filters and report the accuracy change"
    )
    audit.add_argument("--untrained", action="store_true", help="audit random weights (explicit opt-in)")
    audit.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    audit.add_argument("--html", type=Path, default=None, help="write the HTML report here")

    compare = sub.add_parser(
        "compare", help="compare checkpoints of one model (weight updates between snapshots)"
    )
    compare.add_argument("--model", required=True)
    compare.add_argument("checkpoints", nargs="+", help="names of files in models/<model>/, in order")
    compare.add_argument("--json", type=Path, default=None)

    models = sub.add_parser("models", help="the lab's own models in the catalogue")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    add = models_sub.add_parser(
        "add", help="register a class of the user-code folder with its checkpoint (after a dry run)"
    )
    add.add_argument("--module", required=True, help="'file:Class' in the user-code folder, e.g. mynet:MyNet")
    add.add_argument("--weights", type=Path, default=None, help="checkpoint: .safetensors, .pt, .pth, .ckpt")
    add.add_argument("--input-size", required=True, type=_ints, help="channels,height,width, e.g. 3,32,32")
    add.add_argument("--labels", type=Path, default=None, help="class names, one per line")
    add.add_argument("--id", default=None, help="zoo id (default: the file name of --module)")
    add.add_argument(
        "--kwargs",
        type=_json_table,
        default=None,
        help="constructor arguments as JSON, e.g. '{\"width\": 16}'",
    )
    add.add_argument("--mean", type=_floats, default=None, help="per-channel mean, e.g. 0.5,0.5,0.5")
    add.add_argument("--std", type=_floats, default=None, help="per-channel std")
    add.add_argument("--description", default=None)

    weights = sub.add_parser("weights", help="official weights of the zoo's torchvision models")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True)
    pull = weights_sub.add_parser(
        "pull",
        help="download, SHA-256 check and register official weights (CONVLENS_WEIGHTS_MIRROR for a lab mirror)",
    )
    pull.add_argument("models", nargs="+", metavar="MODEL", help="zoo ids, e.g. alexnet vgg16 resnet152")

    micro = sub.add_parser(
        "microscope", help="export a static HTML site of neuron pages (opens from disk, no server)"
    )
    micro.add_argument("--model", required=True, help="zoo model id, e.g. digits_cnn")
    micro.add_argument("--dataset", required=True, help="dataset id, e.g. the built-in 'digits'")
    micro.add_argument(
        "--layers", required=True, type=_names, help="comma-separated layer names, e.g. features.3,features.5"
    )
    micro.add_argument("--out", required=True, type=Path, help="folder to write the site to")
    micro.add_argument("--filters", type=int, default=None, help="export the first N filters of each layer")
    micro.add_argument("--steps", type=int, default=48, help="DeepVis steps per preset (default 48)")
    micro.add_argument("--batch", type=int, default=64, help="filters per DeepVis optimisation batch")
    micro.add_argument("--k", type=int, default=9, help="top images per filter (default 9)")
    micro.add_argument("--untrained", action="store_true", help="random weights (explicit opt-in)")
    return parser


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"write comma-separated integers, e.g. 3,32,32 (got '{text}')"
        ) from None


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"write comma-separated numbers (got '{text}')") from None


def _json_table(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("write a JSON object, e.g. '{\"width\": 16}'")
    return value


def services() -> Services:
    """The command's services, from the environment's settings (``CONVLENS_*``)."""
    return Services.from_settings(get_settings())


def run_audit_command(args: argparse.Namespace, out: Any) -> int:
    req = AuditRequest(
        model=args.model,
        dataset=args.dataset,
        untrained=args.untrained,
        thresholds=dict(args.threshold),
        max_images=args.max_images,
        batch_size=args.batch_size,
        what_if=args.what_if,
        fail_on=args.fail_on,
    )
    req.validate()  # bad thresholds or gates fail before anything is loaded
    report = services().audits.run(req)
    print(summary_text(report), file=out)
    if args.json:
        args.json.write_text(render_json(report))
        print(f"JSON report: {args.json}", file=out)
    if args.html:
        args.html.write_text(render_html(report))
        print(f"HTML report: {args.html}", file=out)
    failed = [g for g in report["gates"] or [] if g["failed"]]
    if failed:
        print(f"FAILED: {', '.join(g['gate'] for g in failed)}", file=out)
        return EXIT_GATE_FAILED
    return EXIT_OK


def run_compare_command(args: argparse.Namespace, out: Any) -> int:
    result = services().checkpoints.compare({"model": args.model, "checkpoints": args.checkpoints})
    for c in result["comparisons"]:
        rate = c["relative_update_per_epoch"]
        per_epoch = f", {rate:.4f} per epoch" if rate is not None else ""
        print(
            f"{c['a']} -> {c['b']}: relative update {c['relative_update']:.4f}{per_epoch}; "
            f"{c['unchanged_filters']} filters never changed",
            file=out,
        )
        for layer in c["layers"]:
            print(
                f"    {layer['layer']:<28} {layer['relative_update']:.4f}  unchanged {len(layer['unchanged'])}",
                file=out,
            )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return EXIT_OK


def run_models_add_command(args: argparse.Namespace, out: Any) -> int:
    from server.zoo.adding import add_model, read_labels, relative_to

    settings = get_settings()
    entry: dict[str, Any] = {
        "id": args.id or args.module.partition(":")[0].rpartition(".")[2],
        "module": args.module,
    }
    if args.kwargs:
        entry["kwargs"] = args.kwargs
    if args.weights is not None:
        if not args.weights.is_file():
            raise InvalidInputError(f"weights file '{args.weights}' does not exist.")
        entry["weights"] = relative_to(args.weights, settings.models_dir)
    entry["input_size"] = args.input_size
    if args.labels is not None:
        entry["labels"] = read_labels(args.labels)
    for key in ("mean", "std", "description"):
        if getattr(args, key) is not None:
            entry[key] = getattr(args, key)
    written = add_model(entry, settings)
    print(
        f"Added '{written['id']}' ({written['module']}, {written['num_classes']} classes) to "
        f"{settings.models_dir / 'catalogue.toml'}; restart the API to serve it.",
        file=out,
    )
    return EXIT_OK


def run_weights_pull_command(args: argparse.Namespace, out: Any) -> int:
    from server.zoo.pull import official_weights, pull

    settings = get_settings()
    wanted = [official_weights(model_id) for model_id in dict.fromkeys(args.models)]  # every id known first
    for weights in wanted:
        print(f"{weights.model_id}: {weights.source_url(settings.weights_mirror)}", file=out, flush=True)
        done = pull(weights, settings)
        if done.already_there:
            print(f"    already pulled: {done.path}", file=out)
        else:
            print(f"    sha256 {done.sha256} (checked), stored as {done.path}", file=out)
    print(
        f"Named under [weights] in {settings.models_dir / 'catalogue.toml'}: the zoo loads them pretrained "
        "from now on (a running API too, without a restart).",
        file=out,
    )
    return EXIT_OK


def run_microscope_command(args: argparse.Namespace, out: Any) -> int:
    from server.microscope import MicroscopeRequest

    req = MicroscopeRequest(
        model=args.model,
        dataset=args.dataset,
        layers=tuple(args.layers),
        filters=args.filters,
        k=args.k,
        steps=args.steps,
        batch=args.batch,
        untrained=args.untrained,
    )
    req.validate()  # nonsense fails before anything is loaded
    site = services().microscope.export(
        req, args.out, lambda f, m: print(f"[{f:4.0%}] {m}", file=out, flush=True)
    )
    print(
        f"Wrote {site.pages} pages and {site.images} images to {site.out} in {site.seconds:.1f} s; "
        f"open {site.out / 'index.html'}",
        file=out,
    )
    return EXIT_OK


def main(argv: list[str] | None = None, out: Any = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command == "audit":
            return run_audit_command(args, out)
        if args.command == "models":
            return run_models_add_command(args, out)
        if args.command == "weights":
            return run_weights_pull_command(args, out)
        if args.command == "microscope":
            return run_microscope_command(args, out)
        return run_compare_command(args, out)
    except (DownloadFailedError, ChecksumMismatchError) as exc:  # the network or the mirror, not the input
        print(f"convlens: error: {' '.join(exc.message.split())}", file=sys.stderr)
        return EXIT_ERROR
    except ConvLensError as exc:
        kind = "bad input" if isinstance(exc, InvalidInputError) else type(exc).__name__
        print(f"convlens: {kind}: {' '.join(exc.message.split())}", file=sys.stderr)  # one line
        return EXIT_BAD_INPUT
    except Exception as exc:  # an environment failure (unreadable data, out of memory): say it, no traceback
        print(f"convlens: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
