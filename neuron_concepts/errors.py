"""Errors that carry a message a user can act on.

Workflow scripts let these propagate; their text names the file, key or value at fault
and says how to fix it, so the user never has to read a traceback from deep inside torch.
"""


class NeuronConceptsError(Exception):
    """Base class of the errors this package raises on bad input."""


class ConfigError(NeuronConceptsError):
    """A configuration value is invalid."""


class InputDataError(NeuronConceptsError):
    """An input file (image, concept file, label CSV) is missing, empty or unreadable."""


class WeightsError(NeuronConceptsError):
    """Model weights cannot be found or loaded."""


class UnreadableArtifactError(InputDataError, FileNotFoundError):
    """An artifact that exists but cannot be read (truncated, damaged), met while a job's
    resources are computed from its inputs' shapes.

    It is a FileNotFoundError naming the file, so Snakemake takes the shape as not known yet
    (the job that remakes the file may be in the same run) and asks again when the job is
    about to run; its message names the file and the command that remakes it.
    """

    def __init__(self, path: str, message: str):
        FileNotFoundError.__init__(self, 2, message, str(path))
        self.message = message

    def __str__(self) -> str:
        return self.message
