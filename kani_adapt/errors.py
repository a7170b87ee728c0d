"""Project exceptions. User mistakes raise these; the CLI prints one line and exits 2."""


class KaniAdaptError(ValueError):
    """Base class of every error caused by user input (files, configs, arguments)."""


class ConfigError(KaniAdaptError):
    """A config value or command-line argument is wrong."""


class DataError(KaniAdaptError):
    """A data item (file, utterance, token sequence) is unusable."""


class CheckpointError(KaniAdaptError):
    """A checkpoint on disk does not match the KaniTTS2 format."""
