"""The one kind of error that is the user's to fix: a bad SPEC or option, a missing or unreadable
file, a recipe that would overwrite another. The command line prints these as one line; any other
exception is a bug and keeps its traceback. A `ValueError`, so library callers can catch either."""


class UserError(ValueError):
    pass
