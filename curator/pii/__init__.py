"""Fast PII detection and redaction: multi-pattern location (Hyperscan/RE2), exact checks in Python."""

from curator.pii.engine import Detection, Engine, get_engine
from curator.pii.patterns import ALL_ENTITIES, DEFAULT_ENTITIES, SECRET_ENTITIES, Options

__all__ = ["ALL_ENTITIES", "DEFAULT_ENTITIES", "SECRET_ENTITIES", "Detection", "Engine", "Options", "get_engine"]
