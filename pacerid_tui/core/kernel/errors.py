"""Errors meant for users: each carries one sentence saying what is wrong and what to do.

The CLI prints `str(error)` and exits with `exit_code`; tracebacks only appear under `--debug`.
"""

from __future__ import annotations


class PaceridError(Exception):
    """Something the user can fix; the message says how."""

    exit_code = 1


class UsageError(PaceridError):
    """Bad input from the user: a broken config, a wrong value, a missing argument."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file that does not parse or validate."""


class CredentialsError(UsageError):
    """Missing or expired AWS or Kaggle credentials."""


class RunNotFound(UsageError):
    """No run with that id (or no run at all) in the registry."""


class HostError(PaceridError):
    """The host could not be reached or a command on it failed."""


class HostKeyMismatch(HostError):
    """The host presented a different key than the one pinned on first connect."""


class ProviderError(PaceridError):
    """The cloud provider refused or failed an operation."""


class CapacityError(ProviderError):
    """No capacity (or price too low) for this zone/instance type; the caller may try the next."""


class InstanceGone(ProviderError):
    """The instance ended under us (spot interruption, power-off): the host will not come back."""
