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
