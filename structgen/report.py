"""What a compiler changed on the way: one typed report for every constraint kind.

Regex and grammar constraints compile exactly and carry an empty report; the
JSON Schema compiler lists the keywords it dropped (``lenient=True``), relaxed
(``huge_bound``), ignored (unknown formats) or restricted."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ReportEntry", "CompileReport"]

#: the kinds of entry the compilers write
ENTRY_KINDS = ("dropped", "relaxed", "ignored", "restricted")


@dataclass(frozen=True)
class ReportEntry:
    """One construct the constraint does not enforce exactly.

    ``kind``: "dropped" | "relaxed" | "ignored" | "restricted"; ``keyword``: the
    keyword or construct; ``where``: its location (a JSON pointer for schemas);
    ``detail``: a readable message."""

    kind: str
    keyword: str
    where: str
    detail: str

    # Mapping-style reads, for code written when entries were dicts.
    def __getitem__(self, name: str):
        if name not in _ENTRY_FIELDS:
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default=None):
        return getattr(self, name) if name in _ENTRY_FIELDS else default

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}


_ENTRY_FIELDS = tuple(f.name for f in fields(ReportEntry))


@dataclass(frozen=True)
class CompileReport:
    """The entries of one compilation, in the order they were found (a sequence)."""

    entries: tuple[ReportEntry, ...] = ()

    @classmethod
    def from_entries(cls, entries) -> "CompileReport":
        """From ``ReportEntry`` objects or dicts with the same keys."""
        out = []
        for e in entries or ():
            if not isinstance(e, ReportEntry):
                e = ReportEntry(**{name: str(e.get(name, "")) for name in _ENTRY_FIELDS})
            out.append(e)
        return cls(tuple(out))

    def of_kind(self, kind: str) -> tuple[ReportEntry, ...]:
        return tuple(e for e in self.entries if e.kind == kind)

    @property
    def dropped(self) -> tuple[ReportEntry, ...]:
        """Keywords left out of the constraint (the language is larger than the schema's)."""
        return self.of_kind("dropped")

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i):
        return self.entries[i]

    def __bool__(self) -> bool:
        return bool(self.entries)
