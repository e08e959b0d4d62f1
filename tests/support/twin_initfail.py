"""A handler module whose import fails: the twin must report it as Lambda does."""

raise RuntimeError("this module refuses to load")


def handler(event: object, context: object) -> None:  # pragma: no cover - never reached
    return None
