"""Omnistream's composition root: settings, the local stack and the `omnistream` CLI.

The domain packages (`events`, `operators`, `state`, `flows`, `serving`, `sim`)
never import from here except `omnistream.settings`.
"""

__version__ = "0.1.0"
