"""delg-tf: DELG (Deep Local and Global features) for TensorFlow 2.21 / Keras 3.

The TensorFlow build comes from an extra so two builds are never installed side by side:
  pip install -e ".[cpu]"   # tensorflow-cpu (CI, laptops, this project's machines)
  pip install -e ".[gpu]"   # tensorflow[and-cuda]
  pip install -e ".[tpu]"   # tensorflow-tpu (Cloud TPU VMs)
Extraction on Apache Beam (delg-extract --runner=...) needs the "beam" extra.
"""

from setuptools import find_packages, setup

TF_VERSION = "2.21.*"

# Console scripts: each binary is a thin absl main; the logic lives in delg_tf/.
CONSOLE_SCRIPTS = [
    "delg-build-tfrecords = delg_tools.build_tfrecords:run",
    "delg-make-synthetic = delg_tools.make_synthetic:run",
    "delg-train = delg_tools.train:run",
    "delg-export = delg_tools.export:run",
    "delg-import-official = delg_tools.import_official:run",
    "delg-calibrate-threshold = delg_tools.calibrate_threshold:run",
    "delg-extract = delg_tools.extract:run",
    "delg-visualize = delg_tools.visualize:run",
    "delg-evaluate = delg_tools.evaluate:run",
    "delg-gldv2-metrics = delg_tools.gldv2_metrics:run",
    "delg-benchmark = delg_tools.benchmark:run",
    "delg-demo = delg_tools.demo:run",
]

setup(
    name="delg-tf",
    version="0.1.0",
    description="DELG (Cao, Araujo, Sim, ECCV 2020) for TensorFlow 2.21 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # Every delg_tf subpackage (a hand-kept list once missed a new one), plus the binaries.
    packages=find_packages(include=["delg_tf", "delg_tf.*"]) + ["delg_tools"],
    # The binaries live in tools/ (as the design lays out) but install as `delg_tools`, so the
    # generic name `tools` never lands in site-packages.
    package_dir={"delg_tools": "tools"},
    install_requires=[
        "keras>=3.10",
        "absl-py>=2.1",
        "numpy>=1.26",
        "tensorflow-datasets>=4.9.7",
        "scipy>=1.11",
        "scikit-image>=0.24",
        "faiss-cpu>=1.8",
        "Pillow>=10.0",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "h5py>=3.10",
        # SuperGlobal re-ranking runs its query chunks on threads with a one-thread BLAS.
        "threadpoolctl>=3.1",
        # Official DELG pbtxt configs are parsed with protobuf's text format (a TF dependency).
        "protobuf>=6.31",
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu=={TF_VERSION}"],
        "gpu": [f"tensorflow[and-cuda]=={TF_VERSION}"],
        "tpu": [f"tensorflow-tpu=={TF_VERSION}"],
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "ruff>=0.6"],
        # 2.77 measured beside tensorflow-cpu 2.21 (protobuf 6.33); [gcp] adds Dataflow's client.
        "beam": ["apache-beam>=2.77,<2.78"],
        # delg-benchmark --parts=training_reference only (the Keras 2 reference step). tf-keras
        # 2.21 requires `tensorflow` (the CUDA build): install it with --no-deps beside
        # tensorflow-cpu, `pip install --no-deps 'tf-keras==2.21.*'`, so it never replaces it.
        "benchmark": [f"tf-keras=={TF_VERSION}"],
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
