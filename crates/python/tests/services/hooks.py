"""A soam.service test service whose input chooses what it does:
  fail        RetryableError("failed on attempt N")
  fatal       FatalError("fatal on attempt N")
  boom        ValueError (a plain exception: its traceback is the message)
  print       prints to stdout (which must not break the protocol), answers "printed"
  sleep:S     sleeps S seconds, answers "slept"
  hooks       answers the hooks seen so far, comma-separated
  info        answers "APP SESSION TASK ATTEMPT"
  code:N      answers "coded" with control code N (set_control_code)
  failcode:N  RetryableError("coded", control_code=N)
  anything else: common data + input
"""
import time

from soam.service import FatalError, RetryableError, Service


class Hooks(Service):
    def __init__(self) -> None:
        self.seen = []

    def on_create_service(self) -> None:
        self.seen.append("create")

    def on_session_enter(self, common_data: bytes) -> None:
        self.seen.append("enter:" + common_data.decode())

    def on_session_update(self, common_data: bytes) -> None:
        self.seen.append("update:" + common_data.decode())

    def on_session_leave(self) -> None:
        self.seen.append("leave")

    def on_invoke(self, data: bytes):
        if data == b"fail":
            raise RetryableError(f"failed on attempt {self.attempt}")
        if data == b"fatal":
            raise FatalError(f"fatal on attempt {self.attempt}")
        if data == b"boom":
            raise ValueError("boom in the service")
        if data == b"print":
            print("this goes to stderr, not into the protocol")
            return "printed"
        if data.startswith(b"sleep:"):
            time.sleep(float(data[6:]))
            return "slept"
        if data == b"hooks":
            return ",".join(self.seen)
        if data.startswith(b"code:"):
            self.set_control_code(int(data[5:]))
            return "coded"
        if data.startswith(b"failcode:"):
            raise RetryableError("coded", control_code=int(data[9:]))
        if data == b"info":
            return f"{self.app} {self.session_id} {self.task_id} {self.attempt}"
        return self.common_data + data


if __name__ == "__main__":
    Hooks().run()
