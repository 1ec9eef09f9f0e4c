"""Benchmarks (run as scripts; a package so that type checking names them bench.*)."""
