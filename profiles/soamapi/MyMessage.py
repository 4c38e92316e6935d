"""The message the soamapi example client and service exchange: one string. Shared by
both sides, as in Symphony's own samples (a module beside the scripts, which Python
finds on sys.path[0], the script's folder)."""
import soamapi


class MyMessage(soamapi.Message):
    def __init__(self, text=""):
        self.text = text

    def on_serialize(self, stream):
        stream.write_string(self.text)

    def on_deserialize(self, stream):
        self.text = stream.read_string()
