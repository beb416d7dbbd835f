"""The one exception root of the reference server.

ServerError
├── ConfigError      bad command line (exit 2)
└── StoreError       the store cannot be opened or written
"""

from __future__ import annotations


class ServerError(Exception):
    """Root of every error the reference server raises on purpose."""


class ConfigError(ServerError):
    """The command line names something that cannot work."""


class StoreError(ServerError):
    """The store URL is wrong or the database refused."""
