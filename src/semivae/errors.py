"""The exceptions a user meets: bad input, a diverged run, a run stopped by a signal.

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


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal; the checkpoint holds everything to resume. A KeyboardInterrupt,
    so a caller's ``except Exception`` (a loop over seeds) does not swallow Ctrl-C and go on."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum
