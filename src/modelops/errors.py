"""The base of every error caused by input (settings, data, files) rather than a bug.

Entry points print these as one clear message and exit 1, without a traceback."""


class InputError(ValueError):
    """Something the user supplied is wrong; the message says what and where."""
