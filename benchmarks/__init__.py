"""The lambda3 benchmark (run it with benchmarks/run; see docs/performance.md)."""
