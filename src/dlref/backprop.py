"""Placeholder for the backprop topic."""

__all__ = []
