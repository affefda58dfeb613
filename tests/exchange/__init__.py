"""Tests for the exchange package."""
