"""Helpers shared by tests in several folders, imported as `tests.helpers.<module>`.

pytest.ini puts the repository root on sys.path (`pythonpath = .`), so no test edits sys.path.
- `export_fixtures`: a tiny untrained DelgModel saved in the training logdir layout.
- `fake_export`: a SavedModel whose "network" has known answers (attention = cell brightness).
- `training_records`: tiny labelled TFRecords, a matching `TrainConfig`, and their fixtures.
"""
