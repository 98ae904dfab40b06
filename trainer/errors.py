"""Exit codes and the one exception type the CLI turns into a one-sentence message.

The controller reads the exit code of `python -m trainer …` to decide what happens next, so the
codes are part of the host contract: 75 (EX_TEMPFAIL, "try again later") means the run stopped
cleanly on a spot notice or SIGTERM with a checkpoint written, and `train --resume auto` goes on.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 75


class TrainerError(Exception):
    """A problem the user can fix; its message is one sentence, shown without a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(TrainerError):
    """Bad arguments or a bad config file."""

    exit_code = EXIT_USAGE
