"""Catalog section: lifecycle."""
