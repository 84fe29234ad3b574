"""nas.strategies"""
