"""Newline-delimited framing of the stdio byte stream (pure)."""

from __future__ import annotations


class LineFramer:
    """Splits a byte stream into lines; a line longer than `max_line` is discarded and reported once.

    Blank lines are skipped, a trailing "\\r" is stripped, and `finish()` returns a last line that had no
    newline at EOF.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Lines completed by `data`, and how many over-long lines were dropped."""
        lines: list[bytes] = []
        dropped = 0
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if self._discarding:
                self._discarding = False
            else:
                if self._buf:
                    self._buf += data[start:nl]
                    line = bytes(self._buf)
                    self._buf.clear()
                else:
                    line = data[start:nl]
                if len(line) > self.max_line:
                    dropped += 1
                else:
                    self._append(lines, line)
            start = nl + 1
        rest = data[start:]
        if rest and not self._discarding:
            if len(self._buf) + len(rest) > self.max_line:
                self._buf.clear()
                self._discarding = True
                dropped += 1
            else:
                self._buf += rest
        return lines, dropped

    @staticmethod
    def _append(lines: list[bytes], line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            lines.append(line)

    def finish(self) -> list[bytes]:
        lines: list[bytes] = []
        if self._buf and not self._discarding:
            self._append(lines, bytes(self._buf))
        self._buf.clear()
        self._discarding = False
        return lines
