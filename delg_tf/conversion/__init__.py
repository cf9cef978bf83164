"""Image files -> TFRecords: the stage behind `delg-build-tfrecords`.

GLDv2 CSVs (`gldv2_csv`) or a class-per-folder tree (`image_folder`) are located (`image_paths`),
split into train/validation (`train_validation_split`, `plan`), sanitized (`image_sanitizer`) and
encoded by worker processes (`worker`) into shards whose progress is journalled (`manifest`) so an
interrupted run resumes (`tfrecord_conversion`); unusable inputs are listed (`bad_inputs`).

Imports `common` and `data` (the Example schema) only. The worker side (`worker`,
`image_sanitizer`) never imports TensorFlow: spawned workers stay light.
"""
