"""The engine: the only code that changes spaces."""
