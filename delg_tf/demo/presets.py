"""The demo's presets: the size of the synthetic data, the training run and the evaluation."""

from __future__ import annotations

PRESETS = ("tiny", "demo")

# Per preset: synthetic-generator overrides, TFRecord shards, delg-train flags added after the
# flagfile, the calibration sample and target feature count, and the re-ranking depth.
PRESET_SETTINGS = {
    "tiny": {
        "synthetic": {},
        "num_shards": 2,
        "train_flags": [
            "--max_iters=12",
            "--batch_size=8",
            "--image_size=64",
            "--report_interval=4",
            "--eval_interval=12",
            "--eval_batches=1",
            "--save_interval=12",
        ],
        "calibration_images": 10,
        "calibration_target": 100,
        "num_to_rerank": 20,
    },
    "demo": {
        "synthetic": {},
        "num_shards": 8,
        "train_flags": [],
        "calibration_images": 50,
        # The official 1000 features suits ~1024 px images; the synthetic ones are 288 px.
        # Fewer, attention-selected features also make re-ranking ~1.5x faster.
        "calibration_target": 300,
        "num_to_rerank": 100,
    },
}
