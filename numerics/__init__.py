"""Numerics for the ReLU-DAE: data models, the exact objective (eq. 6), solvers, certificates.

No sympy at run time: symbolic results reach this package as plain functions.
"""
