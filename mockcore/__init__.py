"""mockcore: a stateful emulator of MetaDefender Core's licence and hot-backup API and its activation server."""

__version__ = "0.1.0"
