"""MultiWorkerMirroredStrategy with two local worker processes (RING over localhost)."""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import subprocess
import sys

from delg_tf.common.logdir import latest_checkpoint


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_finish_with_identical_weights_and_only_the_chief_writes(
    tiny_records, tmp_path
):
    logdir = str(tmp_path / "run")
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    flags = [
        f"--logdir={logdir}",
        f"--train_file_pattern={os.path.join(tiny_records, 'train-*')}",
        "--backbone=resnet_tiny",
        "--image_size=64",
        "--batch_size=8",
        "--max_iters=6",
        "--delg_embedding_layer_dim=64",
        "--autoencoder_dimensions=16",
        "--report_interval=3",
        "--save_interval=3",
        "--strategy=multi_worker",
    ]
    processes, logs, temp_dirs = [], [], []
    for index in range(2):
        temp_dir = tmp_path / f"tmp{index}"
        temp_dir.mkdir()
        temp_dirs.append(str(temp_dir))
        env = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            TMPDIR=str(temp_dir),
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        log = open(tmp_path / f"worker{index}.log", "wb")
        logs.append(tmp_path / f"worker{index}.log")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "delg_tools.train", *flags], stdout=log, stderr=log, env=env
            )
        )
    for process, log in zip(processes, logs, strict=True):
        assert process.wait(timeout=600) == 0, log.read_text()[-3000:]

    digests = []
    for log in logs:
        found = re.findall(r"Finished at step 6 .*Weights sha256: ([0-9a-f]{64})", log.read_text())
        assert len(found) == 1, log.read_text()[-3000:]
        digests.append(found[0])
    assert digests[0] == digests[1]

    # The chief wrote checkpoints, one metrics log and one event file; worker 1 wrote nothing
    # that survived (its checkpoint copies went to a temporary directory, then were deleted).
    assert latest_checkpoint(logdir).endswith("ckpt-6")
    with open(os.path.join(logdir, "metrics.jsonl")) as f:
        assert [json.loads(line)["step"] for line in f] == [3, 6]
    assert len(glob.glob(os.path.join(logdir, "train_logs", "events.out.tfevents.*"))) == 1
    assert os.listdir(temp_dirs[1]) == []
