"""The facade through which the receiver gets a generator: ``load_generator(name)``."""

from __future__ import annotations

from model.clip import Generator

GENERATORS = ("stub",)


def load_generator(name: str = "stub", device: str = "cpu") -> Generator:
    """Return the named generator, ready to ``generate()``.

    ``stub`` is the instant numpy generator for tests and dry runs.
    """
    if name == "stub":
        from model.stub import StubGenerator

        return StubGenerator()
    raise ValueError(f"unknown model {name!r}; available: {', '.join(GENERATORS)}")
