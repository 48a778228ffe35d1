"""Generators behind the documentation site's generated sections."""
