"""Test service written with soam's own service library (soam.service), whose answers
carry Symphony control codes. Each task's input chooses:
  code:N:TEXT     answers TEXT with control code N (TEXT "node": as "node" does)
  raise:N         a RetryableError with control code N
  fatal:N         a FatalError with control code N
  die             the process exits in the middle of the task
  pid             answers its process id
  node            answers the Slurm node it runs on ("local" off Slurm)
  anything else   answers it as it is
"""
import os

from soam.service import FatalError, RetryableError, Service


class Coded(Service):
    def on_invoke(self, data: bytes) -> bytes:
        text = data.decode()
        if text.startswith("code:"):
            _, code, rest = text.split(":", 2)
            self.set_control_code(int(code))
            return self.on_invoke(b"node") if rest == "node" else rest.encode()
        if text.startswith("raise:"):
            raise RetryableError("raised with code " + text[6:], control_code=int(text[6:]))
        if text.startswith("fatal:"):
            raise FatalError("fatal with code " + text[6:], control_code=int(text[6:]))
        if text == "die":
            os._exit(3)
        if text == "node":
            return os.environ.get("SLURMD_NODENAME", "local").encode()
        if text == "pid":
            return str(os.getpid()).encode()
        return data


if __name__ == "__main__":
    Coded().run()
