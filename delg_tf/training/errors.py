"""Why a training run refused to start or stopped (the binary prints these without a traceback)."""


class FlagError(ValueError):
    """A flag value that cannot work; the message names the flag."""


class TrainingError(RuntimeError):
    """Training stopped on bad state; nothing bad was saved."""


class NonFiniteLossError(TrainingError):
    """A loss term, the gradient norm, a weight or an optimizer slot became NaN or Inf."""


class LabelRangeError(TrainingError):
    """A training label lies outside [0, num_classes)."""
