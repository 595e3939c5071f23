"""The one error of ``autonet.compile``."""


class CompileError(RuntimeError):
    """A step cannot be traced by ``autonet.compile``, or a call does not fit its trace."""
