"""Distributed cases. The summary table plugin comes from tests/fixtures/soak.py."""

from __future__ import annotations

from tests.fixtures.soak import pytest_configure, summary

__all__ = ["pytest_configure", "summary"]
