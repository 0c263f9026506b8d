"""The ``matmodal`` command: fetch data, build datasets (and, as they land, train/evaluate/predict).

    matmodal --mirror ../shared/mirror fetch alexandria
    matmodal --mirror ../shared/mirror build alexandria --no-robocrys
    matmodal build mp_elastic --image-size 64 --featuriser magpie
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from matmodal.config import Profile, Settings
from matmodal.datasets.registry import DatasetName, build_dataset, spec


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in {
        "mirror_dir": args.mirror, "cache_dir": args.cache_dir, "output_dir": args.output_dir,
        "profile": args.profile, "seed": args.seed, "n_jobs": args.jobs,
    }.items() if v is not None}
    return Settings(**overrides)


def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    from matmodal.sources import alexandria
    from matmodal.sources.materials_project import MaterialsProject

    if args.source == "alexandria":
        names = args.files or alexandria.list_files(settings)
        for name in names:
            print(alexandria.fetch(name, settings))
    else:
        frame = MaterialsProject(settings).elasticity()
        print(f"{len(frame)} elasticity rows available")
    return 0


def _options(args: argparse.Namespace, settings: Settings):
    from matmodal.datasets.build import BuildOptions

    image = None
    if args.image_size:
        from matmodal.modalities.image import RenderSettings

        image = RenderSettings(size=args.image_size)
    return BuildOptions(robocrys=not args.no_robocrys, robocrys_limit=args.robocrys_limit, image=image,
                        featurisers=tuple(args.featuriser or ()), n_jobs=settings.n_jobs)


def _build(args: argparse.Namespace, settings: Settings) -> int:
    chosen = spec(args.dataset)
    options = _options(args, settings) if chosen.build_options else None
    extra = {k: getattr(args, k) for k in chosen.accepts if getattr(args, k, None) is not None}
    dataset = build_dataset(chosen.name, options=options, settings=settings, **extra)
    from matmodal.datasets.build import summary

    *file_problems, counts = summary(dataset)
    for line in file_problems:  # whole-file problems: one line each, naming the file
        print(f"matmodal: {line}", file=sys.stderr)
    print(counts)
    return 0


def _predict(args: argparse.Namespace, settings: Settings) -> int:
    from matmodal.predict import predict

    frame = predict(args.model, args.input)
    print(frame.to_csv(index=False) if args.output is None else frame.to_csv(args.output, index=False) or args.output)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="matmodal", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("--mirror", type=Path, help="read every source from this local mirror directory")
    main.add_argument("--cache-dir", type=Path)
    main.add_argument("--output-dir", type=Path)
    main.add_argument("--profile", choices=[p.value for p in Profile])
    main.add_argument("--seed", type=int)
    main.add_argument("--jobs", type=int, help="worker processes")
    main.add_argument("-v", "--verbose", action="store_true")
    sub = main.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="download (or locate in the mirror) the raw data")
    fetch.add_argument("source", choices=["alexandria", "materials_project"])
    fetch.add_argument("--files", nargs="*", help="Alexandria file names (default: all listed)")
    fetch.set_defaults(func=_fetch)

    build = sub.add_parser("build", help="build an aligned dataset (table + manifest)")
    build.add_argument("dataset", choices=[d.value for d in DatasetName])
    build.add_argument("--files", nargs="*", help="Alexandria file names (default: all listed)")
    build.add_argument("--sample", type=int, help="seeded reservoir sample of N Alexandria entries")
    build.add_argument("--no-robocrys", action="store_true", help="skip robocrys descriptions")
    build.add_argument("--robocrys-limit", type=int, help="describe only the first N records (by id)")
    build.add_argument("--image-size", type=int, help="render structure images at this size (px)")
    build.add_argument("--featuriser", action="append", help="structure featuriser (repeatable)")
    build.set_defaults(func=_build)

    pred = sub.add_parser("predict", help="predict targets for new structures with a saved model")
    pred.add_argument("--model", type=Path, required=True)
    pred.add_argument("--input", type=Path, nargs="+", required=True, help="CIF/POSCAR/JSON files")
    pred.add_argument("--output", type=Path)
    pred.set_defaults(func=_predict)
    return main


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.func(args, _settings(args))
    except (FileNotFoundError, ValueError) as error:
        print(f"matmodal: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
