"""Symphony's Python echo service, written against soamapi as for Symphony: answers each
task's text with "<ECHO_PREFIX> <text> (task N)". A task whose text is "fail" raises
FailureException (retried), "fatal" raises FatalException (fails at once), "oops" raises
ValueError (the client receives it through get_exception())."""
import os

import soamapi
from MyMessage import MyMessage


class EchoServiceContainer(soamapi.ServiceContainer):
    def on_create_service(self, service_context):
        self.prefix = os.environ.get("ECHO_PREFIX", "echo")
        self.app = service_context.get_application_name()

    def on_session_enter(self, session_context):
        self.common = MyMessage()
        try:
            session_context.populate_common_data(self.common)
        except soamapi.SoamException:
            self.common.text = ""  # the session has no common data

    def on_invoke(self, task_context):
        msg = MyMessage()
        task_context.populate_task_input(msg)
        if msg.text == "fail":
            raise soamapi.FailureException("asked to fail")
        if msg.text == "fatal":
            raise soamapi.FatalException("asked to fail for good")
        if msg.text == "oops":
            raise ValueError("the service could not handle 'oops'")
        reply = MyMessage("%s %s%s (task %s)" % (self.prefix, self.common.text, msg.text, task_context.get_task_id()))
        task_context.set_task_output(reply)

    def on_session_leave(self):
        pass

    def on_destroy_service(self):
        pass


if __name__ == "__main__":
    EchoServiceContainer().run()
