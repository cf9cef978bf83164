"""The training loop: `TrainConfig` (`config`) -> `Trainer` (`trainer`) -> checkpoints.

Strategy construction, the compiled multi-step loop and its guards (`train_step`), losses,
optimizer and schedule, checkpoints and the logdir's own files (`checkpointing`), preemption,
summaries and reports; `preflight` checks flags before anything is traced, and `errors` holds
what the binary reports without a traceback. Imports `common`, `data` and `models`.
"""
