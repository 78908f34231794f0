"""reasoning-viewer: stream a reasoning model's reply, split thought from answer, show both."""

__version__ = "0.1.0"
