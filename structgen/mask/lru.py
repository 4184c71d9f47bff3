"""A thread-safe LRU map bounded by the summed byte size of its values."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["ByteLRU"]


class ByteLRU:
    """``get`` returns ``(value, nbytes)`` or None; ``put`` evicts least recently
    used entries past ``max_bytes`` (the newest entry always stays).

    Reads take no lock (single dict operations are atomic under the GIL; an
    entry evicted between the read and the recency update is simply not
    refreshed); writes and evictions do."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.used = int(max_bytes), 0
        self.data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        hit = self.data.get(key)
        if hit is not None:
            try:
                self.data.move_to_end(key)
            except KeyError:  # evicted by another thread meanwhile
                pass
        return hit

    def put(self, key, value, nbytes: int) -> None:
        with self._lock:
            old = self.data.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self.data[key] = (value, nbytes)
            self.used += nbytes
            while self.used > self.max_bytes and len(self.data) > 1:
                _, (_, n) = self.data.popitem(last=False)
                self.used -= n

    def clear(self) -> None:
        with self._lock:
            self.data.clear()
            self.used = 0

    def __len__(self) -> int:
        return len(self.data)
