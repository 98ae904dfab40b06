"""pacerid-tui: one terminal dashboard for training the PacerID classifier on a cheap spot GPU."""

__version__ = "0.1.0"
