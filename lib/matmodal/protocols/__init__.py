"""massa2024 §3 protocol: 85 % for 5-fold cross-validation, 15 % held-out test, several runs.

- the test split is fixed by ``split_seed`` (the same split as the costa2025 grid when
  :mod:`matmodal.splits` is present); each run reshuffles the folds and re-seeds the models;
- targets are standardised with the mean/std of the fold's *training* rows only;
- every fold trains each model family (early stopping on the fold's validation rows) and is
  scored on its training, validation and the test rows (R², RMSE, ... in the target's unit);
  ``test_ensemble`` scores the mean of the fold models' test predictions.

Split by concern (this package re-exports every public name):

- :mod:`.experiment`: text levels, :class:`Experiment`, :func:`prepare`, the density-slice table;
- :mod:`.cv`: folds, :class:`FoldContext`, :func:`run_protocol`, :func:`validation_search`;
- :mod:`.trainers`: model families as *trainers* (``trainer(ctx) -> [StagePrediction]``:
  :func:`mean_trainer`, :func:`clip_trainer`, :func:`stacked_trainer`, :func:`tower_clip_trainer`)
  and the frozen-tower :class:`FeatureCache`;
- :mod:`.planning`: :func:`model_specs`, :func:`study_trainers`, :func:`run_study` (notebook 07's
  loop), the Table 2 :data:`TRIALS`;
- :mod:`.saved`: :func:`train_and_save`, one ECD-image regressor saved for ``matmodal predict``.
"""

from matmodal.protocols.cv import (
    FoldContext,
    ProtocolConfig,
    StagePrediction,
    Trainer,
    cv_folds,
    fold_contexts,
    run_protocol,
    validation_search,
)
from matmodal.protocols.experiment import (
    ALL_COLUMNS,
    DENSITY_NPZ,
    FORMULA_TEXTS,
    ID,
    IMAGE,
    IMAGE_COLUMNS,
    TEXT_COLUMNS,
    TEXT_LEVELS,
    Experiment,
    density_slice_table,
    formula_words,
    keywords_text,
    level_texts,
    prepare,
)
from matmodal.protocols.planning import (
    TRIALS,
    ModelSpecs,
    model_specs,
    run_study,
    study_trainers,
    trial_configs,
)
from matmodal.protocols.saved import SavedModelPlan, model_name, train_and_save
from matmodal.protocols.trainers import (
    FAMILIES,
    FeatureCache,
    clip_trainer,
    mean_trainer,
    random_init,
    stacked_trainer,
    tower_clip_trainer,
)

__all__ = [
    "ALL_COLUMNS", "DENSITY_NPZ", "FAMILIES", "FORMULA_TEXTS", "ID", "IMAGE", "IMAGE_COLUMNS", "TEXT_COLUMNS", "TEXT_LEVELS",
    "TRIALS", "Experiment", "FeatureCache", "FoldContext", "ModelSpecs", "ProtocolConfig", "SavedModelPlan",
    "StagePrediction", "Trainer", "clip_trainer", "cv_folds", "density_slice_table", "fold_contexts",
    "formula_words", "keywords_text", "level_texts", "mean_trainer", "model_name", "model_specs", "prepare", "random_init",
    "run_protocol", "run_study", "stacked_trainer", "study_trainers", "tower_clip_trainer", "train_and_save",
    "trial_configs", "validation_search",
]
