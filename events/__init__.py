"""The contract as code: event models, decoding into events or dead letters, schemas."""

from events.alerts import Alert, Entity, Severity
from events.dead_letter import DeadLetter
from events.decode import decode
from events.topics import Topic

__all__ = ["Alert", "DeadLetter", "Entity", "Severity", "Topic", "decode"]
