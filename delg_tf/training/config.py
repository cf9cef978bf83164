"""The resolved training settings that library code takes instead of absl FLAGS.

`tools/train.py` turns flags into a `TrainConfig`; everything under `delg_tf/training/` reads
only this dataclass, so the loop can be driven from tests and other tools without absl.
The field names are the official flag names where one exists
(`research/delf/delf/python/training/train.py`).
"""

from __future__ import annotations

import dataclasses
import json
import math

from delg_tf.training.errors import FlagError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs, resolved (no FLAGS, no defaults left implicit).

    Attributes mirror the flags of `tools/train.py`; see its help for the meaning of each.
    `num_classes` is resolved (from the flag, relabeling.csv, the dataset version or the TFDS
    label feature) before the config is built. The input is either TFRecords
    (`train_file_pattern`, optional `validation_file_pattern`) or a prepared TFDS dataset
    (`tfds_name` and the other `tfds_*` fields), never both.
    """

    logdir: str
    num_classes: int
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
    # Model.
    backbone: str = "resnet50"
    block3_strides: bool = True
    imagenet_checkpoint: str | None = None
    # Fine-tuning: a delg-tf logdir or checkpoint prefix to start from (training/init_checkpoint).
    init_checkpoint: str = ""
    delg_gem_power: float = 3.0
    delg_embedding_layer_dim: int = 2048
    delg_scale_factor_init: float = 45.25
    delg_arcface_margin: float = 0.1
    use_autoencoder: bool = True
    autoencoder_dimensions: int = 128
    # delg_tf.models.attention_wiring: "paper" or "pre_2021".
    attention_wiring: str = "paper"
    sync_batch_norm: bool = True
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
        positive = (
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
        non_negative = (
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
        # NaN passes every comparison, so finiteness is checked first (issue 12: a NaN
        # learning rate reached step 1 and stopped with a message naming no flag).
        for name in positive + non_negative:
            value = getattr(self, name)
            if not math.isfinite(value):
                raise FlagError(f"--{name}={value}: must be a finite number.")
        for name in positive:
            if getattr(self, name) <= 0:
                raise FlagError(f"--{name}={getattr(self, name)}: must be positive.")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise FlagError(f"--{name}={getattr(self, name)}: must be >= 0.")
        if self.delg_arcface_margin >= math.pi / 2:
            raise FlagError(
                f"--delg_arcface_margin={self.delg_arcface_margin}: must be below pi/2 radians."
            )
        from delg_tf.models.attention_wiring import ATTENTION_WIRINGS
        from delg_tf.models.backbones import BACKBONES

        if self.backbone not in BACKBONES:
            raise FlagError(f"--backbone={self.backbone}: choose one of {', '.join(BACKBONES)}.")
        if self.attention_wiring not in ATTENTION_WIRINGS:
            raise FlagError(
                f"--attention_wiring={self.attention_wiring!r}: expected one of "
                f"{ATTENTION_WIRINGS}."
            )

    @property
    def has_validation(self) -> bool:
        """Whether the run validates (a validation file pattern or TFDS validation split)."""
        return bool(self.tfds_validation_split if self.tfds_name else self.validation_file_pattern)

    @property
    def resolved_eval_batches(self) -> int:
        """Validation batches per evaluation: the flag, or the official 50000 // batch_size."""
        return self.eval_batches if self.eval_batches > 0 else max(1, 50_000 // self.batch_size)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls(**json.loads(text))


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
