"""The benchmarks (`scripts/bench`): development tooling, not shipped with the console."""
