"""The resolved training settings that library code takes instead of absl FLAGS.

`tools/train.py` turns flags into a `TrainConfig`; everything under `delg_tf/training/` reads
only this dataclass, so the loop can be driven from tests and other tools without absl.
The run's field names are the official flag names where one exists
(`research/delf/delf/python/training/train.py`). The model's architecture is one section,
`TrainConfig.model`, a `delg_tf.models.model_config.ModelConfig` whose fields are
`DelgModel`'s own argument names; `MODEL_FLAGS` is the one table between the two namings.
The flat form (`to_flat` / `from_flat`: every setting under its flag name) is what the binary
builds and `train_config.json` holds, unchanged from before the model had its own section.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from delg_tf.training.errors import FlagError

if TYPE_CHECKING:
    from delg_tf.models.model_config import ModelConfig

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
# Numeric settings (flat / flag names) that must be finite and > 0, or finite and >= 0. Checked
# here, and registered as flag validators by tools/train.py so a bad value stops at parsing.
POSITIVE_FIELDS = (
    "num_classes",
    "batch_size",
    "max_iters",
    "image_size",
    "steps_per_loop",
    "save_interval",
    "eval_interval",
    "report_interval",
    "autoencoder_dimensions",
    "delg_embedding_layer_dim",
    "max_to_keep",
    "delg_gem_power",
    "delg_scale_factor_init",
    "clip_norm",
)
NON_NEGATIVE_FIELDS = (
    "initial_lr",
    "momentum",
    "attention_loss_weight",
    "reconstruction_loss_weight",
    "delg_arcface_margin",
    "eval_batches",
    "keep_checkpoint_every_n_hours",
    "summary_images",
    "seed",
)

# delg-train flag -> `ModelConfig` field, for the model arguments a flag sets. The official
# flag names stay those of the official train.py; the other fields (e.g. attention_filters)
# have no flag and keep their own name in the flat form.
MODEL_FLAGS = {
    "num_classes": "num_classes",
    "backbone": "backbone",
    "imagenet_checkpoint": "backbone_weights",
    "block3_strides": "block3_strides",
    "delg_gem_power": "gem_power",
    "delg_embedding_layer_dim": "embedding_dim",
    "delg_scale_factor_init": "arcface_scale",
    "delg_arcface_margin": "arcface_margin",
    "use_autoencoder": "use_autoencoder",
    "autoencoder_dimensions": "autoencoder_dim",
    "attention_wiring": "attention_wiring",
    "sync_batch_norm": "synchronized_bn",
}
_FLAG_OF_FIELD = {field: flag for flag, field in MODEL_FLAGS.items()}


def model_flag(field: str) -> str:
    """The flag (flat-form key) of a `ModelConfig` field: its delg-train flag, else its name."""
    return _FLAG_OF_FIELD.get(field, field)


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs, resolved (no FLAGS, no defaults left implicit).

    Attributes mirror the flags of `tools/train.py`; see its help for the meaning of each. The
    model's arguments are the section `model` (flags in `MODEL_FLAGS`); its `num_classes` is
    resolved (from the flag, relabeling.csv, the dataset version or the TFDS label feature)
    before the config is built, its `backbone_weights` is `--imagenet_checkpoint` (read at step 0
    only) and its `synchronized_bn` is `--sync_batch_norm` (applied with several replicas only).
    The input is either TFRecords (`train_file_pattern`, optional `validation_file_pattern`) or
    a prepared TFDS dataset (`tfds_name` and the other `tfds_*` fields), never both.
    """

    logdir: str
    model: ModelConfig
    train_file_pattern: str = ""
    validation_file_pattern: str = ""
    # TFDS input (used instead of TFRecords when `tfds_name` is set).
    tfds_name: str = ""
    tfds_data_dir: str = ""
    tfds_split: str = "train"
    tfds_validation_split: str = ""
    tfds_image_key: str = "image"
    tfds_label_key: str = "label"
    seed: int = 0
    # Optimisation (official: SGD momentum 0.9, lr 0.01 linear decay to 0, global-norm clip 10).
    initial_lr: float = 0.01
    momentum: float = 0.9
    clip_norm: float = 10.0
    batch_size: int = 32
    max_iters: int = 500_000
    # Fine-tuning: a delg-tf logdir or checkpoint prefix to start from (training/init_checkpoint).
    init_checkpoint: str = ""
    # Losses.
    attention_loss_weight: float = 1.0
    reconstruction_loss_weight: float = 10.0
    # Input.
    image_size: int = 321
    use_augmentation: bool = True
    random_flip: bool = False
    deterministic_input: bool = False
    # Execution.
    strategy: str = "default"
    tpu: str = ""
    mixed_precision: bool = False
    jit_compile: bool = False
    op_determinism: bool = False
    steps_per_loop: int = 1
    checkpoint_iterator: bool = True
    # Intervals (steps).
    save_interval: int = 1000
    eval_interval: int = 1000
    report_interval: int = 100
    eval_batches: int = 0
    max_to_keep: int = 10
    keep_checkpoint_every_n_hours: float = 3.0
    summary_images: int = 4

    def __post_init__(self) -> None:
        check_input_source(
            train_file_pattern=self.train_file_pattern,
            validation_file_pattern=self.validation_file_pattern,
            tfds_name=self.tfds_name,
            tfds_split=self.tfds_split,
            tfds_validation_split=self.tfds_validation_split,
        )
        if self.strategy not in STRATEGIES:
            raise FlagError(f"--strategy={self.strategy}: expected one of {STRATEGIES}.")
        # NaN passes every comparison, so finiteness is checked first (issue 12: a NaN
        # learning rate reached step 1 and stopped with a message naming no flag).
        flat = self.to_flat()
        for name in POSITIVE_FIELDS + NON_NEGATIVE_FIELDS:
            if not math.isfinite(flat[name]):
                raise FlagError(f"--{name}={flat[name]}: must be a finite number.")
        for name in POSITIVE_FIELDS:
            if flat[name] <= 0:
                raise FlagError(f"--{name}={flat[name]}: must be positive.")
        for name in NON_NEGATIVE_FIELDS:
            if flat[name] < 0:
                raise FlagError(f"--{name}={flat[name]}: must be >= 0.")
        margin = self.model.arcface_margin
        if margin >= math.pi / 2:
            raise FlagError(f"--delg_arcface_margin={margin}: must be below pi/2 radians.")
        from delg_tf.models.attention_wiring import ATTENTION_WIRINGS
        from delg_tf.models.backbones import BACKBONES

        backbone, wiring = self.model.backbone, self.model.attention_wiring
        if backbone not in BACKBONES:
            raise FlagError(f"--backbone={backbone}: choose one of {', '.join(BACKBONES)}.")
        if wiring not in ATTENTION_WIRINGS:
            raise FlagError(f"--attention_wiring={wiring!r}: expected one of {ATTENTION_WIRINGS}.")

    @property
    def has_validation(self) -> bool:
        """Whether the run validates (a validation file pattern or TFDS validation split)."""
        return bool(self.tfds_validation_split if self.tfds_name else self.validation_file_pattern)

    @property
    def resolved_eval_batches(self) -> int:
        """Validation batches per evaluation: the flag, or the official 50000 // batch_size."""
        return self.eval_batches if self.eval_batches > 0 else max(1, 50_000 // self.batch_size)

    def to_flat(self) -> dict[str, Any]:
        """Every setting under its flag name (`model_flag` for the model section)."""
        flat = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del flat["model"]
        for field, value in dataclasses.asdict(self.model).items():
            flat[model_flag(field)] = value
        return flat

    @classmethod
    def flat_names(cls) -> tuple[str, ...]:
        """The keys of `to_flat`: the run's fields, then the model's under `model_flag`."""
        from delg_tf.models.model_config import field_names  # keeps `delg-train --help` TF-free

        run = (f.name for f in dataclasses.fields(cls) if f.name != "model")
        return (*run, *map(model_flag, field_names()))

    @classmethod
    def from_flat(cls, settings: Mapping[str, Any]) -> TrainConfig:
        """The config of a `to_flat` dict (a missing setting takes its default).

        Raises:
          TypeError: naming a key that is no setting.
        """
        from delg_tf.models.model_config import ModelConfig, field_names

        model_keys = {model_flag(field): field for field in field_names()}
        model = {model_keys[k]: v for k, v in settings.items() if k in model_keys}
        run = {k: v for k, v in settings.items() if k not in model_keys}
        return cls(model=ModelConfig(**model), **run)

    def to_json(self) -> str:
        return json.dumps(self.to_flat(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_flat(json.loads(text))


def check_input_source(
    *,
    train_file_pattern: str,
    validation_file_pattern: str,
    tfds_name: str,
    tfds_split: str,
    tfds_validation_split: str,
) -> None:
    """Checks that the input is TFRecords or a TFDS dataset: exactly one of them.

    Raises:
      FlagError: naming the conflicting or missing flags.
    """
    if tfds_name:
        for flag, value in (
            ("train_file_pattern", train_file_pattern),
            ("validation_file_pattern", validation_file_pattern),
        ):
            if value:
                raise FlagError(
                    f"--tfds_name={tfds_name} and --{flag}={value} are both set; train from a "
                    "TFDS dataset or from TFRecords, not both."
                )
        if not tfds_split:
            raise FlagError(f"--tfds_split is empty; give the training split of {tfds_name}.")
        return
    if tfds_validation_split:
        raise FlagError(
            f"--tfds_validation_split={tfds_validation_split} needs --tfds_name; validation of a "
            "TFRecord run is --validation_file_pattern."
        )
    if not train_file_pattern:
        raise FlagError(
            "--train_file_pattern is required (or --tfds_name to train from a TFDS dataset)."
        )
