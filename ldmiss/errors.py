"""The line between a user's mistake and a bug.

Every error that a user's input can cause — a bad argument or config value, unreadable data, a
model directory that is not one, a device that is not there — is a :class:`UserError`; the CLI
prints it as one line and exits 2. Anything else that escapes is a bug in LDMiss: the CLI prints
its traceback and says so, and exits 1. The classes also derive from the builtin a Python caller
would expect (``ValueError`` for a bad value …), so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem with what the user gave; its message says what and how to fix it."""


class UsageError(UserError, ValueError):
    """A bad argument, option or value."""


class Unavailable(UserError, RuntimeError):
    """Something the request needs is not there (a GPU, an optional package)."""


class Unsupported(UserError, NotImplementedError):
    """The method cannot do what was asked (e.g. sample from a non-generative method)."""


class NoResults(UserError, FileNotFoundError):
    """A folder that holds no results to report."""


class Diverged(UserError, FloatingPointError):
    """Training's loss stopped being a number: the settings (almost always the learning rate) are
    beyond what the model can be trained with."""
