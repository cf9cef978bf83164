"""TFRecords -> model inputs: the input pipeline shared by training and export.

`example_schema` (the official Example keys, one source of truth), `decoder` -> `parser` (crop,
resize, flip, normalize; `preprocessing` is shared with export) -> `reader` (tf.data), and
`tfds_source` for TFDS datasets; `relabeling` (relabeling.csv), `image_files` (the image
extensions), `revisited_ground_truth` (Revisited Oxford/Paris gnd files). Imports `common` only.
"""
