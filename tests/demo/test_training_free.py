import functools
import os

from delg_tf.demo import training_free
from delg_tf.demo.paths import Paths
from delg_tf.demo.pipeline import build_stages


def test_stage_runs_in_process_after_the_trained_evaluation(tmp_path):
    flagfile = tmp_path / "demo.flags"
    flagfile.write_text("--initial_lr=0.03\n")
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    stages = build_stages(paths, "tiny", 7, str(flagfile), [], None, 42)
    stage = {s.name: s for s in stages}["training_free"]
    assert stage.command is None and isinstance(stage.function, functools.partial)
    assert stage.function.func is training_free.write_training_free_comparison
    assert stage.function.args == (paths, 42)  # the demo's num_to_rerank
    assert stage.outputs == (os.path.join(paths.output_dir, "evaluation", "training_free"),)


def test_report_section_only_when_the_table_exists(tmp_path):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    assert training_free.comparison_section(paths) == ""
    os.makedirs(training_free.comparison_dir(paths))
    table = "| configuration | medium mAP |\n|---|---|\n| global | 50.00 |\n"
    with open(os.path.join(training_free.comparison_dir(paths), "comparison.md"), "w") as f:
        f.write(table)
    section = training_free.comparison_section(paths)
    assert section.startswith(f"\n## {training_free.TITLE}\n")
    assert section.endswith(table) and "SuperGlobal M=400 K=9 beta=0.15" in section
