"""A small typed app on duo-orm, checked by tests/typing/check.py."""
