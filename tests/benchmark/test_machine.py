from delg_tf.benchmark.machine import available_memory_bytes, machine_description


def test_machine_description_names_what_the_figures_ran_on(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    machine = machine_description()
    for key in (
        "cpu_model",
        "cpu_flags",
        "logical_cores",
        "usable_cores",
        "memory_total_gib",
        "memory_available_gib",
        "load_average_1_5_15",
        "platform",
        "python",
        "versions",
        "onednn_enabled",
        "environment",
        "tf_devices",
        "tf_threads",
    ):
        assert key in machine, key
    assert set(machine["versions"]) == {"tensorflow", "keras", "numpy", "scipy", "skimage", "faiss"}
    assert machine["environment"]["TF_NUM_INTRAOP_THREADS"] == "2"
    assert machine["logical_cores"] >= 1
    assert machine["memory_total_gib"] > 0


def test_available_memory_is_positive_bytes_on_linux():
    available = available_memory_bytes()
    assert isinstance(available, int) and available > 0
