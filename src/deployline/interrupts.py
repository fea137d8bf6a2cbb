"""Ctrl-C, as deployline reports it: exit 130 and one line, whatever was running.

`cli.run` installs `interrupts` around every command. Its SIGINT handler raises
KeyboardInterrupt as Python's own does, and remembers that it did: an interrupt can surface as
another error (the jsii runtime's Node process gets the same SIGINT and dies, so a synth in
progress fails with a JavaScript error), which `synth` then reports as the interrupt it is, not
as a problem of the user's files.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

#: The exit status of an interrupted command (128 + SIGINT, what shells report).
EXIT_INTERRUPTED = 130


class Interrupts:
    """A context manager that installs the SIGINT handler (main thread only) and records."""

    def __init__(self) -> None:
        self.seen = False
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> Interrupts:
        self.seen = False
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:  # Python runs signal handlers in the main thread only
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self.seen = False  # it speaks of the command that ran; callers after it start clean
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True
        raise KeyboardInterrupt


#: The running command's interrupts.
interrupts = Interrupts()
