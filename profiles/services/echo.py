#!/usr/bin/env python3
"""Example soam service in Python: answers each task with its input, prefixed by the
session's common data. Built on ``soam.service`` (standard library only), which the agent
puts on every instance's PYTHONPATH; ``profiles/services/raw_echo.py`` is the same service
speaking the protocol by hand (docs/service-protocol.md)."""
from soam.service import Service


class Echo(Service):
    def on_invoke(self, data: bytes) -> bytes:
        return self.common_data + data


if __name__ == "__main__":
    Echo().run()
