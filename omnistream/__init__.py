"""omnistream: event-streaming omnichannel customer journeys on Kafka."""

__version__ = "0.1.0"
