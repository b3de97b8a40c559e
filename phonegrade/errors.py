"""The errors phonegrade raises for people (bad input, unusable files, unreachable services).

Each is a `PhoneGradeError`: the command line prints its message as one line and exits with status 2
(`phonegrade.cli.main`); the demo shows it as it is. They also subclass the built-in error they refine
(ValueError, RuntimeError), so code written against those keeps catching them.
"""


class PhoneGradeError(Exception):
    """An error whose message is for the person who ran phonegrade: what is wrong and what to do."""


class ConfigError(PhoneGradeError, ValueError):
    """Options, a recipe file, or a model's config.json that cannot be used as they are."""


class DataError(PhoneGradeError, ValueError):
    """Training or evaluation data that cannot be used: missing classes, too few images, unreadable sources."""


class ImageLoadError(PhoneGradeError, ValueError):
    """A file or upload could not be turned into an RGB image."""


class ModelLoadError(PhoneGradeError, RuntimeError):
    """A model folder or repo is missing, corrupt, or not a phonegrade model."""


class PretrainedWeightsError(PhoneGradeError, RuntimeError):
    """Pretrained weights were asked for but cannot be loaded."""


class CorrectionError(PhoneGradeError, ValueError):
    """A correction was refused (bad labels) or could not be stored (disk full, read-only folder)."""
