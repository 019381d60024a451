"""One exception type for bad user input.

Anything the user can fix (a missing file, a wrong flag, a label out of range) raises
:class:`UserError` with a one-line message that names the problem and the fix. The CLI
prints it as ``error: <message>`` and exits with code 2; library callers can catch it.
"""


class UserError(ValueError):
    """Bad input the user can fix. ``str(err)`` is a single line: problem, then fix.
    A ValueError, as scikit-learn and most Python callers expect of bad input."""

    exit_code = 2


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite. The run directory keeps the last good weights."""
