"""What the benchmarks share (bench/README.md lists each module); the tests import it too."""
