"""qtsp: a sandbox Qualified Trust Service Provider for PSD2 / eIDAS."""

__version__ = "0.1.0"
