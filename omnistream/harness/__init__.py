"""In-process harness: the worker's data path on memory topics, a memory table and a manual clock.

Like FastStream's ``TestKafkaBroker``: no broker, no Redis, no Faust. Inputs are produced to
``omni.customer-events`` partitions with the partitioner the worker uses, the customer agent's
step runs the pure engine on the row of the key, sends land on ``send.<channel>`` topics and
timers fire through the same ``timer_fired`` constructor as the worker's timer loop. Modules:
``ports`` (what the runtime uses, as Protocols), ``clock``, ``broker``, ``tables``, ``run``.
"""
