"""Superseded: the error classes live in ``boternity.errors`` and their HTTP statuses in
``boternity.handlers.rest``. This module stays only while ``boternity.service.store`` still imports
``BadRequest`` from here; it goes when that module's code moves into ``boternity.store`` (issue #11)."""

from __future__ import annotations

from boternity.errors import BadRequest

__all__ = ["BadRequest"]
