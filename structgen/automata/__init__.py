"""Byte-level automata: regex lowering and DFA operations."""

from .fsm import ByteDFA

__all__ = ["ByteDFA"]
