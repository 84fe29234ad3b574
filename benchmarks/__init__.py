"""nas.benchmarks"""
