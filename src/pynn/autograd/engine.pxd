# Cython declarations for engine.py (pure-Python mode: the .py is the only source;
# this file adds C types when CMake compiles it, and is ignored when it runs uncompiled).
cimport cython

cdef class _TensorBase:
    cdef public object data
    cdef public object grad
    cdef public bint requires_grad
    cdef public object _ctx
    cdef public object name
    cdef public object _keras_logits
    cdef public object _keras_mask
    cdef object __weakref__

@cython.locals(t=_TensorBase)
cpdef _TensorBase _wrap(object arr)

@cython.locals(node=_TensorBase, tp=_TensorBase, i=Py_ssize_t, j=Py_ssize_t)
cpdef list _backprop(_TensorBase root, object grad, bint retain_graph)

@cython.locals(node=_TensorBase, tp=_TensorBase)
cpdef list _topological_order(_TensorBase root)

@cython.locals(t=_TensorBase, i=Py_ssize_t, record=bint)
cdef bint _unwrap_args(tuple args, list raw, list needs) except -1

@cython.locals(t=_TensorBase, out=_TensorBase, n=Py_ssize_t, n0=bint, n1=bint, record=bint)
cpdef object _apply(object cls, tuple args, dict kwargs)
