"""Subprocess helper for the Ctrl-C tests."""

from __future__ import annotations

import signal


def sigint_default() -> None:
    """``preexec_fn`` giving the child Ctrl-C's default disposition, as a terminal does.

    A test runner started in the background (``cmd &`` in a non-interactive shell) ignores SIGINT, and children
    inherit that; Python then installs no KeyboardInterrupt handler, and a test of what Ctrl-C does would
    measure the runner instead of the program.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
