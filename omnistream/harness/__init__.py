"""In-process harness: the worker's own agent functions on memory topics, tables and a manual clock.

Like FastStream's ``TestKafkaBroker``: no broker, no Redis server, no Faust consumer. A
``Runtime`` built from memory parts (``broker``, ``tables``, ``clock``, ``delivery``) is handed
to the functions the worker's Faust agents call (ingest, the customer agent, identity, the
channel agents); ``run`` plays the consumer and the timer loop. ``ports`` types what the runtime
reads of a record and a table.
"""
