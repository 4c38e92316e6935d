"""A soamapi.ServiceContainer test service: text in, text out. Its input chooses:
  fail / fatal / oops   FailureException / FatalException / ValueError
  custom                an exception class of this file's own
  attempt               answers the attempt number
  common                answers the session's common data (a DefaultTextMessage)
  bytes:N               answers a byte array of N bytes 0..255 (a "B" array message)
  code:N:TEXT           answers TEXT with control code N (task_context.set_control_code)
  failcode:N:PATH       appends a line to PATH, then raises FailureException with code N
  anything else         answers it upper-cased
"""
import array

import soamapi


class CustomError(Exception):
    pass


class Text(soamapi.Message):
    # No super().__init__(): real subclasses often leave it out.
    def __init__(self, text=""):
        self.text = text

    def on_serialize(self, stream):
        stream.write_string(self.text)

    def on_deserialize(self, stream):
        self.text = stream.read_string()


class Blob(soamapi.Message):
    def __init__(self, data=b""):
        self.data = data

    def on_serialize(self, stream):
        a = array.array("B", self.data)
        stream.write_byte_array(a, 0, len(a))

    def on_deserialize(self, stream):
        self.data = stream.read_byte_array("B").tobytes()


class Container(soamapi.ServiceContainer):
    def on_session_enter(self, session_context):
        self.common = soamapi.DefaultTextMessage()
        try:
            session_context.populate_common_data(self.common)
        except soamapi.SoamException:
            self.common.set_text("")

    def on_invoke(self, task_context):
        t = Text()
        task_context.populate_task_input(t)
        if t.text == "fail":
            raise soamapi.FailureException("asked to fail")
        if t.text == "fatal":
            raise soamapi.FatalException("asked to fail for good")
        if t.text == "oops":
            raise ValueError("bad value 'oops'")
        if t.text == "custom":
            raise CustomError("a class of the service's own")
        if t.text.startswith("code:"):
            _, code, rest = t.text.split(":", 2)
            task_context.set_control_code(int(code))
            task_context.set_task_output(Text(rest))
            return
        if t.text.startswith("failcode:"):
            _, code, path = t.text.split(":", 2)
            with open(path, "a") as f:
                f.write("attempt\n")
            task_context.set_control_code(int(code))
            raise soamapi.FailureException("coded failure")
        if t.text == "attempt":
            out = Text(str(task_context.get_attempt()))
        elif t.text == "common":
            out = Text(self.common.get_text())
        elif t.text.startswith("bytes:"):
            out = Blob(bytes(i % 256 for i in range(int(t.text[6:]))))
        else:
            out = Text(t.text.upper())
        task_context.set_task_output(out)


if __name__ == "__main__":
    Container().run()
