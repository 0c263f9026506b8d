"""Quiet execution: known library noise off, so executed notebooks and ``matmodal`` output show the study.

:func:`quiet` is called once by the notebook setup and by the CLI. It is idempotent and only
touches what is listed here, so a warning nobody has seen before still shows:

* **warnings** (:data:`NOISE`): the torch ``LeafSpec`` deprecation that Lightning triggers,
  rich's ``install "ipywidgets"`` and tqdm's ``IProgress not found`` (progress bars in a kernel
  without widgets), Lightning's dataloader-workers / logging-interval hints, AutoGluon's
  ``pkg_resources`` import, AutoMM's "Only CPU" and short ``max_text_len`` notes (chosen settings),
  pymatgen's CIF coordinate-rounding note (only when it is the whole message);
* **loggers** (:data:`LOGGERS`) to WARNING or ERROR: Lightning's "GPU available", "Seed set to",
  checkpoint "reached ... saving model", litlogger and
  litmodels tips and the model summaries of AutoMM's ``ModelSummary`` callback (all logged at INFO
  by the child loggers named here: importing Lightning resets only its package loggers to INFO),
  sentence-transformers; and single messages of a logger (:data:`MESSAGES`): transformers' weight
  "LOAD REPORT" when it lists only UNEXPECTED keys (one with MISSING weights still shows), AutoMM's
  image-size note;
* **nltk data checked up front**: AutoMM's text augmenter calls ``nltk.download`` for
  :data:`NLTK_RESOURCES` the first time it is built; when they are not installed,
  ``nltk.download`` is replaced by a stub that downloads nothing (this machine is offline), and
  :attr:`QuietState.missing_nltk` names what is missing;
* **batch** (``batch=True``, or ``MATMODAL_BATCH=1`` as the notebook runner sets): progress bars
  off: tqdm (every bar constructed disabled), AutoMM's Lightning bar and
  transformers' bars (``AUTOMM_TUTORIAL_MODE``). Interactively they stay on, rendered as widgets by
  ``ipywidgets`` (rich and tqdm then need no ``IProgress`` fallback).

:func:`stdout_to_stderr` keeps a command's stdout for its result (``matmodal predict > out.csv``);
:func:`stderr_outputs` lists the stderr outputs of an executed notebook (tests fail on any).

Imports only the standard library at module level, and never imports Lightning, AutoGluon or
transformers itself (they take seconds): loggers are configured by name, before or after import.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

BATCH_ENV = "MATMODAL_BATCH"

#: ``(category name, message regex)`` of warnings that are library noise, never a finding.
NOISE: tuple[tuple[str, str], ...] = (
    ("FutureWarning", r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    ("UserWarning", r'install "ipywidgets" for Jupyter support'),
    ("Warning", r"IProgress not found"),
    ("Warning", r".*does not have many workers which may be a bottleneck"),
    ("Warning", r"The number of training batches \(\d+\) is smaller than the logging interval"),
    ("Warning", r".*`max_epochs` was not set"),
    ("Warning", r"Checkpoint directory .* exists and is not empty"),
    ("UserWarning", r"pkg_resources is deprecated as an API"),  # autogluon.multimodal's import
    ("UserWarning", r"Only CPU is detected in the instance"),  # AutoMM on a CPU machine (by design here)
    ("UserWarning", r"provided max length: \d+ is smaller than .* default"),  # RunConfig.max_text_len, chosen
    # pymatgen's CIF reader snapping coordinates within its tolerance (benign; nothing else in the note)
    ("UserWarning", r"Issues encountered while parsing CIF: \d+ fractional coordinates rounded to ideal values "
                    r"to avoid issues with finite precision\.?\s*$"),
)

#: logger -> message regexes dropped from it (one library line each, kept precise on purpose).
MESSAGES: dict[str, tuple[str, ...]] = {
    # RunConfig.image_size below the backbone's 224 px is the profile's deliberate choice
    "autogluon.multimodal.models.utils": (r"The provided image size=\d+ is smaller than the default size",),
    # a checkpoint's weight report when the only finding is UNEXPECTED keys (e.g. MiniLM's unused
    # pooler); a report with MISSING or MISMATCHED weights (randomly initialised layers) still shows
    "transformers.modeling_utils": (r"(?s)(?!.*\b(?:MISSING|MISMATCH))\S*\w+ LOAD REPORT",),
}

#: library logger -> level.
LOGGERS: dict[str, int] = {
    **{f"{package}{module}": logging.WARNING
       for package in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric")
       for module in ("", ".utilities.rank_zero", ".utilities.seed", ".callbacks.model_summary",
                      ".callbacks.model_checkpoint", ".accelerators.cuda")},
    "sentence_transformers": logging.WARNING,
    "timm": logging.WARNING,
    "torch.distributed": logging.ERROR,
}

#: What AutoMM's ``trivial_augmenter.download_nltk`` would fetch: ``(nltk.data path, package)``.
NLTK_RESOURCES: tuple[tuple[str, str], ...] = (
    ("taggers/averaged_perceptron_tagger_eng", "averaged_perceptron_tagger_eng"),
    ("taggers/averaged_perceptron_tagger", "averaged_perceptron_tagger"),
    ("corpora/wordnet", "wordnet"),
    ("corpora/omw-1.4", "omw-1.4"),
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuietState:
    """What :func:`quiet` did: batch mode, and the nltk packages that are not installed."""

    batch: bool
    missing_nltk: tuple[str, ...]


def is_batch() -> bool:
    """True under the notebook runner / CI (``MATMODAL_BATCH`` set to anything but ``0``/empty)."""
    return os.environ.get(BATCH_ENV, "0") not in ("", "0")


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def filter_warnings() -> None:
    """Ignore the :data:`NOISE` warnings (each by category and message)."""
    import builtins

    for category, message in NOISE:
        warnings.filterwarnings("ignore", message=message, category=getattr(builtins, category))


class MessageFilter(logging.Filter):
    """Drops the records of one logger whose message matches one of ``patterns``."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        super().__init__()
        self.patterns = tuple(re.compile(p) for p in patterns)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.match(message) for p in self.patterns)


def set_log_levels() -> None:
    """:data:`LOGGERS` levels, and a :class:`MessageFilter` per :data:`MESSAGES` logger (once)."""
    for name, level in LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    for name, patterns in MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, MessageFilter) for f in logger.filters):
            logger.addFilter(MessageFilter(patterns))


def missing_nltk_data() -> tuple[str, ...]:
    """The :data:`NLTK_RESOURCES` packages nltk cannot find locally."""
    if not _installed("nltk"):
        return ()
    import nltk

    missing = []
    for path, package in NLTK_RESOURCES:
        try:
            nltk.data.find(path)
        except LookupError:
            missing.append(package)
    return tuple(missing)


def _offline_download(package: str = "", *args, **kwargs) -> bool:
    log.debug("nltk.download(%r) skipped: the package is not installed and matmodal runs offline", package)
    return False


def block_nltk_downloads(missing: tuple[str, ...]) -> None:
    """Replace ``nltk.download`` by a stub that downloads nothing when data is missing."""
    if missing:
        import nltk

        nltk.download = _offline_download


def _always_disabled(init):
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        kwargs["disable"] = True
        init(self, *args, **kwargs)

    wrapper._matmodal_quiet = True  # type: ignore[attr-defined]
    return wrapper


_PROGRESS_ENV = ("TQDM_DISABLE", "AUTOMM_TUTORIAL_MODE")
_SAVED_ENV: dict[str, str | None] = {}  # what progress_off replaced, for progress_on


def restore_env(saved: dict[str, str | None]) -> None:
    """Put environment variables back as ``saved`` recorded them (None: the variable was unset)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def progress_off() -> None:
    """Batch mode: no tqdm, AutoMM or transformers progress bars.

    ``tqdm.std.tqdm`` is constructed disabled whatever the caller passes (``tqdm.auto``'s
    notebook bar and every other subclass go through it and then draw nothing);
    ``TQDM_DISABLE`` does the same for subprocesses.
    """
    for name in _PROGRESS_ENV:
        _SAVED_ENV.setdefault(name, os.environ.get(name))
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["AUTOMM_TUTORIAL_MODE"] = "1"  # AutoMM: no Lightning bar, no transformers bars
    import tqdm.std

    if not getattr(tqdm.std.tqdm.__init__, "_matmodal_quiet", False):
        tqdm.std.tqdm.__init__ = _always_disabled(tqdm.std.tqdm.__init__)  # type: ignore[method-assign]
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def progress_on() -> None:
    """Undo :func:`progress_off` (an interactive session after a batch one in the same process)."""
    import tqdm.std

    init = tqdm.std.tqdm.__init__
    if getattr(init, "_matmodal_quiet", False):
        tqdm.std.tqdm.__init__ = init.__wrapped__  # type: ignore[method-assign]
    restore_env(_SAVED_ENV)  # only what progress_off set; a user's own setting stays
    _SAVED_ENV.clear()


def quiet(batch: bool | None = None) -> QuietState:
    """Silence known library noise (see the module docstring); ``batch`` None: :func:`is_batch`."""
    batch = is_batch() if batch is None else batch
    filter_warnings()
    set_log_levels()
    missing = missing_nltk_data()
    block_nltk_downloads(missing)
    if batch:
        progress_off()
    else:
        progress_on()
    return QuietState(batch=batch, missing_nltk=missing)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout inside the block to stderr: Python ``print``s (CHGNet's
    "initialized with N parameters"), rich/tqdm bars and C-level writes to file descriptor 1, so a
    command's stdout carries only its result (``matmodal predict > out.csv``)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)


#: stderr text an executed notebook may show (regexes); anything else is noise to fix or filter.
EXPECTED_STDERR: tuple[str, ...] = (
    r"^no GBM row on \S+: featuriser\(s\) .* not built in ",  # models.recipe: a study row skipped, said why
)


def stderr_outputs(notebook: dict | str | os.PathLike) -> list[tuple[int, str]]:
    """``(cell index, text)`` of every stderr stream output of an executed ``.ipynb`` (path or dict)
    that no :data:`EXPECTED_STDERR` pattern matches."""
    import json
    from pathlib import Path

    data = notebook if isinstance(notebook, dict) else json.loads(Path(notebook).read_text())
    found = []
    for index, cell in enumerate(data.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = "".join(output.get("text", ""))
                if not any(re.search(p, text) for p in EXPECTED_STDERR):
                    found.append((index, text))
    return found
