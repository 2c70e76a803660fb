"""The one exception type a stage raises for bad input or bad configuration.

Stage entry points catch it and print a single line (`error: <file>: <problem>`) instead of a
traceback, then exit non-zero. Anything else is a bug and keeps its traceback.
"""


class WikigptError(Exception):
    """A user-facing failure: bad input, bad params, missing upstream output."""
