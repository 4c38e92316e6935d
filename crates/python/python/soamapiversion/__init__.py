"""Symphony's ``soamapiversion``: programs import it before ``soamapi``. On Symphony it
picks the module build for the running interpreter; soam's ``soamapi`` is one build for
every CPython 3.9 and later, so there is nothing to pick and importing it does nothing."""

#: The Symphony Python API version soam's ``soamapi`` follows.
SOAMAPI_VERSION = "7.3.2"
