"""Cardiowatch: real-time cardiac monitoring service."""

__version__ = "0.1.0"
