"""One small status file per process of a traced run, so that `trace` can say what happened.

Evidence alone cannot tell "no process built a DistributedDataParallel" from "the recorder
never loaded" (a launcher replaced PYTHONPATH) or "every write failed" (a read-only folder).
`trace` therefore passes a folder of its own in DDP_CODEMOD_STATUS, outside the evidence
folder so that it stays writable when that one is not, and each process appends a few JSON
lines to `<pid>-<ns>.jsonl` there: "loaded" at start-up, "forked" (with the parent's pid)
for a child that does anything, "ddp" when it builds its first DDP instance, and "wrote" or
"write_failed" whenever the outcome of an evidence write changes. That is one open and a few
short writes per process, never on the training path, and nothing here ever raises.
Python 3.8 syntax; stdlib only.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENV = "DDP_CODEMOD_STATUS"
MAX_LINES = 32  # a process that flips between failing and writing stops telling at some point


class Status:
    def __init__(self, folder: str | None) -> None:
        self.folder = folder or None
        self._pid = os.getpid()
        self._parent: int | None = None
        self._fd: int | None = None
        self._lines = 0
        self._said: set[str] = set()
        self._last_write: str | None = None  # "wrote" or "write_failed"

    def note(self, event: str, **fields: Any) -> None:
        """Append one line; events other than writes are said once per process."""
        if self.folder is None:
            return
        try:
            pid = os.getpid()
            if pid != self._pid:  # a forked child: a file of its own, opened when needed
                self._parent, self._pid = self._pid, pid
                self._fd, self._lines, self._said, self._last_write = None, 0, set(), None
            if event in ("wrote", "write_failed"):
                if event == self._last_write:
                    return
                self._last_write = event
            elif event in self._said:
                return
            self._said.add(event)
            if self._lines >= MAX_LINES:
                return
            self._lines += 1
            if self._fd is None:
                name = f"{pid}-{time.time_ns()}.jsonl"
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
                self._fd = os.open(os.path.join(self.folder, name), flags, 0o644)
                if self._parent is not None and event != "forked":
                    self._write({"event": "forked", "pid": pid, "parent": self._parent})
            self._write(dict({"event": event, "pid": pid}, **fields))
        except Exception:
            pass

    def _write(self, line: dict[str, Any]) -> None:
        assert self._fd is not None
        os.write(self._fd, (json.dumps(line) + "\n").encode("utf-8"))


STATUS = Status(os.environ.get(ENV))
