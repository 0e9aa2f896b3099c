"""Demo data for trying FinStack out and for benchmarks."""
