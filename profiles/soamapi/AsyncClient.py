"""Symphony's asynchronous Python client, unchanged in style: results are pushed to a
SessionCallback (PARTIAL_ASYNC) on the library's threads while the main thread sends.
Usage: python3 AsyncClient.py [TASKS]"""
import sys
import threading

import soamapi
from MyMessage import MyMessage


class MySessionCallback(soamapi.SessionCallback):
    def __init__(self, expected):
        self.lock = threading.Lock()
        self.expected = expected
        self.received = 0
        self.failed = []
        self.done = threading.Event()

    def on_response(self, task_output_handle):
        with self.lock:
            if task_output_handle.is_successful():
                reply = MyMessage()
                task_output_handle.populate_task_output(reply)
                print("task %s: %s" % (task_output_handle.get_id(), reply.text))
            else:
                embedded = task_output_handle.get_exception().get_embedded_exception()
                self.failed.append(task_output_handle.get_id())
                print("task %s failed: %r" % (task_output_handle.get_id(), embedded))
            self.received += 1
            if self.received == self.expected:
                self.done.set()

    def on_exception(self, exception):
        print("session failed: %s" % exception)
        self.done.set()


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    inputs = sys.argv[2:] or ["hello %d" % i for i in range(count)]
    soamapi.initialize()
    conn = soamapi.connect("SampleAppPython", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    callback = MySessionCallback(len(inputs))
    attrs = soamapi.SessionCreationAttributes()
    attrs.set_session_name("myAsyncSession")
    attrs.set_session_type("ShortRunningTasks")
    attrs.set_session_flags(soamapi.SessionFlags.PARTIAL_ASYNC)
    attrs.set_session_callback(callback)
    session = conn.create_session(attrs)
    for text in inputs:
        task = soamapi.TaskSubmissionAttributes()
        task.set_task_input(MyMessage(text))
        with callback.lock:
            handle = session.send_task_input(task)
        handle.get_id()
    ok = callback.done.wait(120)
    session.close()
    conn.close()
    soamapi.uninitialize()
    print("all done: %d of %d, %d failed" % (callback.received, len(inputs), len(callback.failed)))
    return 0 if ok and callback.received == len(inputs) else 1


if __name__ == "__main__":
    sys.exit(main())
