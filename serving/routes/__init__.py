"""One router per resource; `serving.app` includes them all."""
