"""Placeholder for the tensors topic."""

__all__ = []
