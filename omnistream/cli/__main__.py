"""`python -m omnistream.cli ...`: how `omnistream up` starts its simulator with this interpreter."""

from omnistream.cli import app

app()
