"""Where the demo reads and writes: every stage's folder under one output directory."""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass
class Paths:
    """Where the demo reads and writes; all under `output_dir` unless the user gives data."""

    output_dir: str
    synthetic_dir: str
    gldv2_dir: str
    tfrecords_dir: str
    gnd_path: str
    images_dir: str
    logs_dir: str
    stages_dir: str
    figures_dir: str

    @classmethod
    def make(
        cls, output_dir: str, gldv2_dir: str | None, gnd: str | None, images: str | None
    ) -> Paths:
        """The demo's paths, as absolute paths.

        Args:
          output_dir: where every stage writes.
          gldv2_dir: the user's GLDv2-layout training data, or None for the synthetic set.
          gnd: the user's Revisited ground truth file, or None for the synthetic test set.
          images: the folder of `gnd`'s images (given with `gnd`).

        Returns:
          The paths; the synthetic data goes to `<output_dir>/data/synthetic`.
        """
        output_dir = os.path.abspath(output_dir)
        synthetic_dir = os.path.join(output_dir, "data", "synthetic")
        return cls(
            output_dir=output_dir,
            synthetic_dir=synthetic_dir,
            gldv2_dir=os.path.abspath(gldv2_dir) if gldv2_dir else synthetic_dir,
            tfrecords_dir=os.path.join(output_dir, "data", "tfrecords"),
            gnd_path=os.path.abspath(gnd)
            if gnd
            else os.path.join(synthetic_dir, "test", "gnd_synthetic.pkl"),
            images_dir=os.path.abspath(images)
            if images
            else os.path.join(synthetic_dir, "test", "jpg"),
            logs_dir=os.path.join(output_dir, "logs"),
            stages_dir=os.path.join(output_dir, "stages"),
            figures_dir=os.path.join(output_dir, "figures"),
        )

    def logdir(self, model: str) -> str:
        """The training logdir (checkpoints, metrics) of `model` ("untrained" or "trained")."""
        return os.path.join(self.output_dir, "train", model)

    def export(self, model: str) -> str:
        """The SavedModel folder of `model`."""
        return os.path.join(self.output_dir, "export", model)

    def features(self, model: str, image_set: str) -> str:
        """The feature store of `model` on `image_set` ("query" or "index")."""
        return os.path.join(self.output_dir, "features", model, image_set)

    def evaluation(self, model: str) -> str:
        """The delg-evaluate output folder (metrics.json) of `model`."""
        return os.path.join(self.output_dir, "evaluation", model)
