"""Fakes and builders shared by several test files."""
