"""absl binaries (installed as the `delg_tools` package); each is a thin `main` over delg_tf."""

import os

# Before any binary imports TensorFlow: hide its C++ start-up lines (oneDNN, CPU features); a
# user who wants them sets TF_CPP_MIN_LOG_LEVEL. See `cli.py`.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
