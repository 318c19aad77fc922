"""Operator tooling: topic planning and creation, Kafka security settings.

Nothing here runs on a worker's hot path; ``topics`` is pure (it decides), ``kafka_admin`` talks
to the cluster (it does), and ``cli`` is the ``omnistream topics`` command group.
"""
