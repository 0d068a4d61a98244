"""A warning on stderr as one whole line, whatever else writes there at the same time.

The engine's forked workers and the driver share one stderr. `print(line, file=sys.stderr)` is
two writes to the stream (the text, then the newline), each flushed on its own when the stream
has no room or is line-buffered, so two processes' warnings could come out as one line with the
other's glued in the middle, and a log reader could no longer tell which file a warning named.
One write(2) of the encoded line with its newline is whole for a pipe up to PIPE_BUF (4096 bytes
on Linux) and for a file opened to append; longer lines are rare (paths and reasons are cut short
where they are made) and at least come out in one piece from this process.
"""

from __future__ import annotations

import io
import os
import sys


def warn(line: str) -> None:
    """`line` and a newline on stderr in one write: "warning: PATH: PROBLEM". A character the
    stream cannot encode (a lone surrogate from a file name) is escaped, never an error of its own."""
    stream = sys.stderr
    if stream is None:  # no stderr at all (a process started without one): nowhere to say it
        return
    encoding = stream.encoding or "utf-8"
    data = (line + "\n").encode(encoding, "backslashreplace")
    try:
        fd = stream.fileno()
    except (AttributeError, io.UnsupportedOperation):  # a stand-in with no descriptor (a test's capture)
        stream.write(data.decode(encoding))
        stream.flush()
        return
    stream.flush()  # what this process wrote before comes first
    while data:  # one write unless interrupted part way: the rest follows
        data = data[os.write(fd, data):]
