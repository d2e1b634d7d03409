"""A local, protocol-faithful Backpack exchange for tests, the demo and benchmarks."""
