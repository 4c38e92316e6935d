"""Symphony's synchronous Python client, unchanged in style: tasks are sent from several
threads, then collected with fetch_task_output. Usage: python3 SyncClient.py [TASKS]"""
import sys
import threading

import soamapiversion  # noqa: F401  (Symphony programs import it first)
import soamapi
from MyMessage import MyMessage


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    soamapi.initialize()
    conn = soamapi.connect("SampleAppPython", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    print("connection ID=" + conn.get_id())
    attrs = soamapi.SessionCreationAttributes()
    attrs.set_session_name("mySession")
    attrs.set_session_type("ShortRunningTasks")
    attrs.set_session_flags(soamapi.SessionFlags.RECEIVE_SYNC)
    session = conn.create_session(attrs)
    print("session ID=" + session.get_id())

    def send(lo, hi):
        for i in range(lo, hi):
            task = soamapi.TaskSubmissionAttributes()
            task.set_task_input(MyMessage("hello %d" % i))
            session.send_task_input(task)

    threads = [threading.Thread(target=send, args=(k * count // 4, (k + 1) * count // 4)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("sent %d tasks" % count)

    done = 0
    while done < count:
        outputs = session.fetch_task_output(count - done, 60)
        if not outputs:
            break
        for out in outputs:
            done += 1
            if out.is_successful():
                reply = MyMessage()
                out.populate_task_output(reply)
                print("task %s: %s" % (out.get_id(), reply.text))
            else:
                print("task %s failed: %s" % (out.get_id(), out.get_exception()))
    session.close()
    conn.close()
    soamapi.uninitialize()
    print("all done: %d of %d" % (done, count))
    return 0 if done == count else 1


if __name__ == "__main__":
    sys.exit(main())
