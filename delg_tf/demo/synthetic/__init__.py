"""The demo's synthetic landmarks: rendered photos of invented buildings, in the GLDv2 layout.

`scenes` invents each landmark (a 3-D facade), `views` renders it from a random viewpoint with
occluders, `photos` adds the camera's look, and `landmarks` writes the train/index/query folders,
the CSVs and a Revisited-style ground truth that `delg-make-synthetic` produces.
"""
