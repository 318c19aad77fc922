"""The Faust runtime: the only package that imports faust. Thin adapters around the pure core."""
