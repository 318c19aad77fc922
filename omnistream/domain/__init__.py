"""The pure domain: event envelope, customer state and the commands the engine emits.

Nothing here imports faust, aiokafka, redis or an HTTP library, and nothing reads the clock.
"""
