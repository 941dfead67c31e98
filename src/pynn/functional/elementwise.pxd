# Cython declarations for elementwise.py (compiled by CMake; ignored when it runs as Python).
cpdef object _shape(object x)
