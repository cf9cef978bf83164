"""Why a training run stopped on bad state (the binary prints these without a traceback)."""


class TrainingError(RuntimeError):
    """Training stopped on bad state; nothing bad was saved."""


class NonFiniteLossError(TrainingError):
    """A loss term, the gradient norm, a weight or an optimizer slot became NaN or Inf."""


class LabelRangeError(TrainingError):
    """A training label lies outside [0, num_classes)."""
